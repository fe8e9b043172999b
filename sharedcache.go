package oauthintrospection

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sharedTier is the compiled cache.redis: a second cache tier that replicas share. On a local miss
// it is asked before the IdP; an IdP answer is stored in it. It holds the IdP's answer, never a
// verdict: each replica judges it with its own configuration, so claims and headers never cross
// configurations. Redis can never block a request or change a verdict: a command is bounded by
// timeout, and any failure (an outage, a timeout, an entry that does not parse) means "not found",
// so the IdP is asked exactly as without Redis.
type sharedTier struct {
	client *redisClient
	// prefix is keyPrefix and the digest of what decides the IdP's answer (the endpoint, the hint
	// and the client's identity) and of ttlSeconds. The token (and rendered templates) join per
	// request.
	prefix  string
	revoked string // keyPrefix + "revoked:": the marker of a token revoked through a replica
	ttl     int64  // seconds: cache.ttlSeconds, the lifetime of an active answer in Redis
	negTTL  int64  // seconds: cache.negativeTtlSeconds
	// markFor is how long after a revocation an answer asked before it can still let a request
	// through on a replica of this configuration: from Redis for ttl, or from an in-process entry
	// for its TTL and staleIfErrorSeconds. A revocation marker must live that long.
	markFor int64
}

const (
	defaultRedisPrefix    = "oauthintrospection:"
	defaultRedisTimeoutMs = 50
	maxRedisTimeoutMs     = 10000
	defaultLocalTTL       = 5
	maxRedisDatabase      = 1 << 16
)

// compileRedis compiles cache.redis, and caps the in-process TTLs in local at localTtlSeconds.
func compileRedis(c CacheConfig, local *CacheConfig, k *clientSettings) (*sharedTier, error) {
	r := c.Redis
	endpoints := splitEndpoints(r.Endpoints)
	if len(endpoints) == 0 {
		if r.Username != "" || r.Password != "" || r.PasswordFile != "" || r.KeyPrefix != "" {
			return nil, errors.New("cache.redis.endpoints: required when other cache.redis options are set")
		}
		return nil, nil
	}
	for i, e := range endpoints {
		// The value is not quoted: an endpoint written as a URL may hold a password.
		if _, port, err := net.SplitHostPort(e); err != nil || port == "" {
			return nil, fmt.Errorf("cache.redis.endpoints: endpoint %d is not host:port", i+1)
		}
	}
	if c.TTLSeconds == 0 {
		return nil, errors.New("cache.redis: requires cache.ttlSeconds above 0")
	}
	if r.Database < 0 || r.Database > maxRedisDatabase {
		return nil, fmt.Errorf("cache.redis.database: must be between 0 and %d, got %d", maxRedisDatabase, r.Database)
	}
	if r.TimeoutMilliseconds < 0 || r.TimeoutMilliseconds > maxRedisTimeoutMs {
		return nil, fmt.Errorf("cache.redis.timeoutMilliseconds: must be between 0 (the default, %d) and %d, got %d", defaultRedisTimeoutMs, maxRedisTimeoutMs, r.TimeoutMilliseconds)
	}
	if r.LocalTTLSeconds < 0 || r.LocalTTLSeconds > maxCacheSeconds {
		return nil, fmt.Errorf("cache.redis.localTtlSeconds: must be between 0 (the default, %d) and %d, got %d", defaultLocalTTL, maxCacheSeconds, r.LocalTTLSeconds)
	}
	password, passwordFile, err := compileRedisPassword(r)
	if err != nil {
		return nil, err
	}
	tlsFiles, tlsConf, err := compileTLS("cache.redis.tls", r.TLS)
	if err != nil {
		return nil, err
	}
	prefix := r.KeyPrefix
	if prefix == "" {
		prefix = defaultRedisPrefix
	}
	t := &sharedTier{
		client:  sharedRedisClient(redisOptionsKey(endpoints, r), func() *redisClient { return redisClientFor(endpoints, r, password, passwordFile, tlsFiles, tlsConf) }),
		prefix:  prefix + answerDigest(k, c.TTLSeconds) + ":",
		revoked: prefix + "revoked:",
		ttl:     int64(c.TTLSeconds),
		negTTL:  int64(c.NegativeTTLSeconds),
	}
	localTTL := orDefault(r.LocalTTLSeconds, defaultLocalTTL)
	if local.TTLSeconds > localTTL {
		local.TTLSeconds = localTTL
	}
	if local.NegativeTTLSeconds > localTTL {
		local.NegativeTTLSeconds = localTTL
	}
	t.markFor = t.ttl
	if byLocal := int64(local.TTLSeconds + local.StaleIfErrorSeconds); byLocal > t.markFor {
		t.markFor = byLocal
	}
	return t, nil
}

// splitEndpoints flattens endpoints given as a list, as comma-separated strings, or both.
func splitEndpoints(list []string) []string {
	var out []string
	for _, e := range list {
		for _, part := range strings.Split(e, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// compileRedisPassword returns how the password is read: inline, or from passwordFile, whose
// watched file it returns too, for its problems (redisFileProblems).
func compileRedisPassword(r RedisConfig) (func() string, *watchedFile, error) {
	switch {
	case r.Password != "" && r.PasswordFile != "":
		return nil, nil, errors.New("cache.redis.password: set password or passwordFile, not both")
	case r.PasswordFile != "":
		src, err := newSecretFile(r.PasswordFile, time.Now())
		if err != nil {
			return nil, nil, errors.New("cache.redis.passwordFile: " + err.Error())
		}
		return func() string { return secretAt(src, time.Now()) }, src.file, nil
	}
	password := r.Password
	return func() string { return password }, nil, nil
}

// answerDigest digests what decides the IdP's answer besides the token and the rendered
// templates: the endpoint, the hint, and who asks (the static headers and the client). It digests
// ttlSeconds too: a reload that shortens it must not read entries written to live longer than
// its revocation markers do. And it digests how the endpoint is trusted (endpointTrust): an
// answer that a configuration without verification took from whoever held the address must not
// reach one that verifies the IdP.
func answerDigest(k *clientSettings, ttl int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q %d %s", k.endpoint, k.hintField, ttl, endpointTrust(k.tls))
	for _, hd := range k.headers {
		fmt.Fprintf(h, " %q=%q", hd.name, hd.value)
	}
	if k.auth != nil {
		fmt.Fprintf(h, " client %q %q", k.auth.clientID, k.auth.method)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// redisClientFor makes the client of these options; it dials nothing.
func redisClientFor(endpoints []string, r RedisConfig, password func() string, passwordFile *watchedFile, files *tlsSource, conf *tls.Config) *redisClient {
	rc := newRedisClient(endpoints, time.Duration(orDefault(r.TimeoutMilliseconds, defaultRedisTimeoutMs))*time.Millisecond)
	rc.username = r.Username
	rc.password = password
	rc.passwordFile = passwordFile
	rc.database = r.Database
	rc.tlsFiles = files
	rc.tls = conf
	rc.watched = files != nil || passwordFile != nil
	return rc
}

// The Redis clients are owned by the registry's side of the plugin, keyed by their options:
// every middleware, and every reload, that names the same Redis shares one pool of connections.
var (
	redisClientsMu sync.Mutex
	redisClients   = map[string]*redisClient{}
)

// redisOptionsKey digests every option that makes a Redis client (secrets included, so that a
// changed password makes a new client; the digest is never logged).
func redisOptionsKey(endpoints []string, r RedisConfig) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%q %q %q %q %d %q %q %q %v %d", endpoints, r.Username, r.Password, r.PasswordFile,
		r.Database, r.TLS.CA, r.TLS.Cert, r.TLS.Key, r.TLS.InsecureSkipVerify, r.TimeoutMilliseconds)))
	return hex.EncodeToString(sum[:])
}

// sharedRedisClient returns the registered client of key, or registers the one build makes.
func sharedRedisClient(key string, build func() *redisClient) *redisClient {
	redisClientsMu.Lock()
	defer redisClientsMu.Unlock()
	if rc := redisClients[key]; rc != nil {
		return rc
	}
	rc := build()
	redisClients[key] = rc
	return rc
}

// sharedAnswerKey is the Redis key of the answer whose in-process cache key is key: the SHA-256
// of the token, and of the rendered header templates if any (tokenKey). It never holds the token.
func sharedAnswerKey(t *sharedTier, key cacheKey) string {
	return t.prefix + hex.EncodeToString(key[:])
}

// sharedMarkerKey is the Redis key of the revocation marker of the token whose SHA-256 is sum,
// the same for every configuration: keyPrefix, "revoked:" and sum.
func sharedMarkerKey(t *sharedTier, sum cacheKey) string {
	return t.revoked + hex.EncodeToString(sum[:])
}

// askTiers answers a local miss of key: from Redis when it holds the answer, or else from the
// IdP, whose answer then goes to Redis. answered is false when no answer came (askIdP). Only a
// configuration with cache.redis calls it.
func askTiers(m *middleware, rendered http.Header, token string, local cacheKey) (*verdict, bool) {
	t := m.settings.shared
	key := sharedAnswerKey(t, local)
	sum := local // the token's SHA-256, unless rendered templates joined it
	if m.cache.keyed {
		sum = sha256.Sum256([]byte(token))
	}
	marker := sharedMarkerKey(t, sum)
	claims, reachable, marked := sharedGet(m, t, key, marker)
	if marked {
		// Revoked elsewhere: the local entry, past its TTL, may predate the revocation, and must
		// not stand in for a failing IdP (staleIfErrorSeconds).
		forgetEntry(m.cache, local)
	}
	if claims != nil {
		return judge(m.settings, claims), true
	}
	// The entry is stamped with the time the IdP was asked, not the time it answered: an answer
	// still in flight when the token is revoked must not be trusted after the marker.
	asked := time.Now()
	v, claims, answered := askIdP(m, rendered, token)
	if answered && reachable {
		// Not after a failed read: a Redis that does not answer costs a request one timeout.
		sharedPut(m, t, key, claims, v, asked)
	}
	return v, answered
}

// errMGETShape is a reply to MGET that is not one value per key: no Redis sends it, so the peer is
// not one, and the read has failed.
var errMGETShape = errors.New("redis: malformed reply to MGET")

// sharedGet returns the answer Redis holds for key, or nil: not there, unreadable, stored before
// the token's revocation marker, or Redis failing. An entry is "v1 <unix nanoseconds> <answer>".
// marked tells that the token has a revocation marker. A marker never decides a verdict: it only
// sends the request on to the IdP, which does.
func sharedGet(m *middleware, t *sharedTier, key, marker string) (claims map[string]any, reachable, marked bool) {
	reply, err := redisDo(t.client, "MGET", key, marker)
	if t.client.watched {
		logFileProblems(m, redisFileProblems(t.client))
	}
	if err == nil && len(reply.arr) != 2 {
		err = errMGETShape
	}
	if err != nil {
		sharedProblem(m, "read", err)
		return nil, false, false
	}
	marked = !reply.arr[1].null
	if reply.arr[0].null {
		return nil, true, marked
	}
	stored, answer, ok := splitSharedEntry(reply.arr[0].str)
	if !ok {
		m.logf("error", "shared cache: an entry in Redis is not an introspection answer; asking the IdP")
		return nil, true, marked
	}
	if marked {
		// A second of margin for the clocks of the replicas: an entry stored about when the
		// token was revoked is not trusted either.
		if revokedAt, err := strconv.ParseInt(reply.arr[1].str, 10, 64); err != nil || stored <= revokedAt+int64(time.Second) {
			return nil, true, true
		}
	}
	if claims, err = decodeObject(strings.NewReader(answer)); err != nil {
		m.logf("error", "shared cache: an entry in Redis is not an introspection answer; asking the IdP")
		return nil, true, marked
	}
	if _, ok := claims["active"].(bool); !ok {
		return nil, true, marked
	}
	return claims, true, marked
}

// sharedPut stores the IdP's answer for key, asked at asked: an active one until the earlier of
// ttlSeconds after asked and its exp, an inactive one until negativeTtlSeconds (if set) after
// asked. Counted from asked, not from the answer: a revocation marker then outlives every entry
// asked before it (sharedMark), however late the answer came.
func sharedPut(m *middleware, t *sharedTier, key string, claims map[string]any, v *verdict, asked time.Time) {
	active, _ := claims["active"].(bool)
	ttl := t.negTTL
	if active {
		ttl = t.ttl
		if v.status != 0 && v.status != http.StatusForbidden {
			return // an answer judged unusable (a malformed exp) is not shared
		}
	}
	if ttl <= 0 {
		return
	}
	until := asked.UnixMilli() + ttl*1000
	if active && v.exp < until/1000 {
		until = 0 // an exp before 1970 has passed; in ms it could overflow
		if v.exp > 0 {
			until = v.exp * 1000
		}
	}
	left := until - time.Now().UnixMilli()
	if left <= 0 {
		return
	}
	var buf bytes.Buffer
	buf.WriteString("v1 " + strconv.FormatInt(asked.UnixNano(), 10) + " ")
	if err := json.NewEncoder(&buf).Encode(claims); err != nil {
		return
	}
	_, err := redisDo(t.client, "SET", key, strings.TrimSuffix(buf.String(), "\n"), "PX", strconv.FormatInt(left, 10))
	if err != nil {
		sharedProblem(m, "write", err)
	}
}

// splitSharedEntry splits an entry into the time it was stored and the answer.
func splitSharedEntry(entry string) (int64, string, bool) {
	rest, ok := strings.CutPrefix(entry, "v1 ")
	if !ok {
		return 0, "", false
	}
	at, answer, ok := strings.Cut(rest, " ")
	if !ok {
		return 0, "", false
	}
	stored, err := strconv.ParseInt(at, 10, 64)
	return stored, answer, err == nil
}

// sharedMark marks token as revoked at now in t's Redis, so that every replica and every
// configuration on it asks the IdP again instead of reading an answer stored before. The marker
// lives ttl seconds, the longest markFor of the tiers under its prefix (registeredTiers), and two
// more: an entry lives at most ttl from when its IdP was asked (sharedPut), and entries asked
// up to a second after the revocation are distrusted too (sharedGet). It is written even while
// the client's breaker skips calls, and without a busy slot (redisCall): a revocation is rare, and
// a marker that is not written lets other replicas accept the token.
func sharedMark(m *middleware, t *sharedTier, marker string, now time.Time, ttl int64) {
	at := strconv.FormatInt(now.UnixNano(), 10)
	if _, err := redisCall(t.client, time.Now().Add(t.client.timeout), "SET", marker, at, "EX", strconv.FormatInt(ttl+2, 10)); err != nil {
		m.logf("error", "shared cache: Redis write of a revocation failed ("+redisErrorCategory(err)+"); other replicas may accept the token for up to "+strconv.FormatInt(ttl, 10)+" s")
	}
}

// sharedProblem logs a failed Redis command. A skipped one (the client's breaker is open) is not
// logged again.
func sharedProblem(m *middleware, what string, err error) {
	if err == nil || err == errRedisSkipped {
		return
	}
	m.logf("error", "shared cache: Redis "+what+" failed ("+redisErrorCategory(err)+"); asking the IdP")
}
