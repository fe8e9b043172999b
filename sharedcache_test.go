package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// The shared tier (sharedcache.go) and revocation (revocation.go) through the middleware, with a
// real redis-server. Replicas are middlewares of different names with one configuration: each
// has its own state in the registry, as separate Traefik processes would, and all share Redis.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// revocableIDP is a fake IdP with an introspection endpoint that counts its calls, and a
// revocation endpoint (/revoke) that takes the client rs:rs-secret.
type revocableIDP struct {
	srv            *httptest.Server
	introspected   atomic.Int32
	mu             sync.Mutex
	revoked        map[string]bool
	answerExtra    string // claims added to every active answer
	failIntrospect atomic.Bool
}

func newRevocableIDP(t *testing.T) *revocableIDP {
	f := &revocableIDP{revoked: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		token := r.PostForm.Get("token")
		if r.URL.Path == "/revoke" {
			if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("rs:rs-secret")) {
				w.Header().Set("WWW-Authenticate", `Basic realm="idp"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
				return
			}
			f.mu.Lock()
			f.revoked[token] = true
			f.mu.Unlock()
			return
		}
		f.introspected.Add(1)
		if f.failIntrospect.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		f.mu.Lock()
		revoked := f.revoked[token]
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case revoked || strings.HasPrefix(token, "bogus"):
			_, _ = w.Write([]byte(`{"active":false}`))
		default:
			exp := time.Now().Add(time.Hour).Unix()
			_, _ = w.Write([]byte(`{"active":true,"grp":"admin","sub":"` + token + `","exp":` + strconv.FormatInt(exp, 10) + f.answerExtra + `}`))
		}
	}))
	t.Cleanup(func() { f.srv.Close() }) // Yaegi v0.16.1 cannot pass a method value of a compiled type
	return f
}

// sharedConfig is a configuration with the shared tier on srv and revocation at /revoke.
func sharedConfig(idp *revocableIDP, redisAddr string, tune func(*Config)) *Config {
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.ForwardHeaders = map[string]string{"Group": "grp", "Subject": "sub"}
	cfg.Cache.Redis.Endpoints = []string{redisAddr}
	cfg.Cache.Redis.LocalTTLSeconds = 1
	cfg.Cache.Redis.TimeoutMilliseconds = 200
	cfg.Cache.NegativeTTLSeconds = 30
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
	if tune != nil {
		tune(cfg)
	}
	return cfg
}

// replica builds the handler of a middleware named name with cfg.
func replica(t *testing.T, name string, cfg *Config) (http.Handler, *upstream) {
	t.Helper()
	up := &upstream{}
	h, err := New(context.Background(), up, cfg, name)
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	return h, up
}

// inner returns the middleware behind a handler New made.
func inner(h http.Handler) *middleware {
	if r, ok := h.(*revocationHandler); ok {
		return r.m
	}
	return h.(*middleware)
}

func revokeThrough(m http.Handler, token, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader("token="+token+"&token_type_hint=access_token"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return send(m, req)
}

var rsBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte("rs:rs-secret"))

// TestSharedTierAcrossReplicas: a token is introspected once for two replicas; a replica with
// another configuration judges the same stored answer by its own claims; revocation through one
// replica stops the token on both within localTtlSeconds; no key holds the token.
func TestSharedTierAcrossReplicas(t *testing.T) {
	srv := startRedis(t)
	idp := newRevocableIDP(t)
	a, _ := replica(t, "a@shared", sharedConfig(idp, srv.addr, nil))
	b, upB := replica(t, "b@shared", sharedConfig(idp, srv.addr, nil))
	strict, _ := replica(t, "strict@shared", sharedConfig(idp, srv.addr, func(c *Config) { c.Claims = "Equals(`grp`, `root`)" }))

	const token = "tok-shared-1"
	expectStatus(t, send(a, bearerRequest(token)), http.StatusOK)
	expectStatus(t, send(b, bearerRequest(token)), http.StatusOK)
	if req, _ := upB.seen(); req == nil || req.Header.Get("Subject") != token {
		t.Errorf("replica B did not forward the Subject claim of its own verdict")
	}
	expectStatus(t, send(strict, bearerRequest(token)), http.StatusForbidden)
	if n := idp.introspected.Load(); n != 1 {
		t.Fatalf("the IdP got %d introspections for one token and three replicas, want 1", n)
	}
	// An inactive answer is shared too, for negativeTtlSeconds.
	expectStatus(t, send(a, bearerRequest("bogus-1")), http.StatusUnauthorized)
	expectStatus(t, send(b, bearerRequest("bogus-1")), http.StatusUnauthorized)
	if n := idp.introspected.Load(); n != 2 {
		t.Fatalf("the IdP got %d introspections, want 2", n)
	}

	keys := expectRedis(t, testRedisClient(srv.addr, ""), "", "KEYS", "*")
	for _, k := range keys.arr {
		if strings.Contains(k.str, token) || strings.Contains(k.str, "bogus-1") {
			t.Errorf("a Redis key holds the token: %q", k.str)
		}
	}
	// The entry lives no longer than ttlSeconds (30).
	key := sharedAnswerKey(inner(a).settings.shared, sha256.Sum256([]byte(token)))
	if ttl := expectRedis(t, testRedisClient(srv.addr, ""), "", "TTL", key).n; ttl <= 0 || ttl > 30 {
		t.Errorf("TTL of the entry = %d, want within (0, 30]", ttl)
	}

	// A second New of a's configuration (another router, or a reload) runs on a's tier and
	// Redis client, and serves the token from the shared state without asking the IdP.
	again, _ := replica(t, "a@shared", sharedConfig(idp, srv.addr, nil))
	if inner(again).settings.shared != inner(a).settings.shared || inner(b).settings.shared.client != inner(a).settings.shared.client {
		t.Errorf("handlers of one configuration, or of one Redis, do not share their tier and client")
	}
	expectStatus(t, send(again, bearerRequest(token)), http.StatusOK)
	if n := idp.introspected.Load(); n != 2 {
		t.Errorf("the IdP got %d introspections after a second New, want still 2", n)
	}

	expectStatus(t, revokeThrough(again, token, rsBasic), http.StatusOK)
	expectStatus(t, send(a, bearerRequest(token)), http.StatusUnauthorized)
	waitFor(t, 3*time.Second, "replica B to stop accepting the revoked token", func() bool {
		return send(b, bearerRequest(token)).Code == http.StatusUnauthorized
	})
	expectStatus(t, send(strict, bearerRequest(token)), http.StatusUnauthorized)
}

// TestSharedTierNeverDecides: an entry that does not parse is ignored; a Redis outage costs only
// IdP calls, each bounded; a failing IdP is not hidden by Redis unless staleIfErrorSeconds says so.
func TestSharedTierNeverDecides(t *testing.T) {
	srv := startRedis(t)
	idp := newRevocableIDP(t)
	cfg := sharedConfig(idp, srv.addr, nil)
	a, _ := replica(t, "a@never", cfg)
	key := sharedAnswerKey(inner(a).settings.shared, sha256.Sum256([]byte("tok-garbage")))
	for _, garbage := range []string{`not json`, `v1 123 {"active":"yes"}`, `v1 x {"active":true}`, `v1 1 {"active":true,"grp":"admin"} {}`} {
		expectRedis(t, testRedisClient(srv.addr, ""), "OK", "SET", key, garbage)
		before := idp.introspected.Load()
		expectStatus(t, send(a, bearerRequest("tok-garbage")), http.StatusOK)
		if idp.introspected.Load() != before+1 {
			t.Errorf("entry %q was used instead of asking the IdP", garbage)
		}
		forgetLocal(inner(a))
	}

	srv.stop()
	for i := 0; i < 5; i++ {
		start := time.Now()
		expectStatus(t, send(a, bearerRequest("tok-down-"+strconv.Itoa(i))), http.StatusOK)
		if took := time.Since(start); took > time.Second {
			t.Errorf("request %d with Redis down took %v", i, took)
		}
	}
	// Past the breaker's threshold, Redis costs nothing: the skipped calls return at once.
	if until := inner(a).settings.shared.client.skipUntil.Load(); until == 0 {
		t.Errorf("the Redis client did not stop trying")
	}
}

// forgetLocal empties a middleware's in-process cache.
func forgetLocal(m *middleware) {
	m.cache.mu.Lock()
	forgetAll(m.cache)
	m.cache.mu.Unlock()
}

// TestRevocationWithoutRedis: the endpoint purges the local caches; it relays the IdP's
// refusals; it answers POST only; an IdP that cannot be reached is a 503.
func TestRevocationWithoutRedis(t *testing.T) {
	idp := newRevocableIDP(t)
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
	m, up := replica(t, "local@revocation", cfg)
	other, _ := replica(t, "other@revocation", cfg)

	expectStatus(t, send(m, bearerRequest("tok-r")), http.StatusOK)
	expectStatus(t, send(other, bearerRequest("tok-r")), http.StatusOK)
	expectStatus(t, send(m, bearerRequest("tok-kept")), http.StatusOK)
	_, hits := up.seen()

	rec := revokeThrough(m, "tok-r", "Basic d3Jvbmc6d3Jvbmc=")
	expectStatus(t, rec, http.StatusUnauthorized)
	expectEqual(t, "relayed WWW-Authenticate", rec.Header().Get("Www-Authenticate"), `Basic realm="idp"`)
	expectStatus(t, send(m, bearerRequest("tok-r")), http.StatusOK) // not revoked, still cached

	expectStatus(t, revokeThrough(m, "tok-r", rsBasic), http.StatusOK)
	expectStatus(t, send(m, bearerRequest("tok-r")), http.StatusUnauthorized)
	expectStatus(t, send(other, bearerRequest("tok-r")), http.StatusUnauthorized)
	if _, now := up.seen(); now != hits+1 {
		t.Errorf("the revocation requests reached the backend")
	}
	// Only the revoked token is forgotten: a cache keyed by the token alone keeps the others.
	asked := idp.introspected.Load()
	expectStatus(t, send(m, bearerRequest("tok-kept")), http.StatusOK)
	if idp.introspected.Load() != asked {
		t.Errorf("revoking one token forgot another")
	}

	get := httptest.NewRequest(http.MethodGet, "/revoke", nil)
	rec = send(m, get)
	expectStatus(t, rec, http.StatusMethodNotAllowed)
	expectEqual(t, "Allow", rec.Header().Get("Allow"), "POST")

	idp.srv.Close()
	expectStatus(t, revokeThrough(m, "tok-x", rsBasic), http.StatusServiceUnavailable)
}

// TestSharedTierCoalesces: concurrent misses for one token make one Redis read and one IdP call
// per replica.
func TestSharedTierCoalesces(t *testing.T) {
	srv := startRedis(t)
	idp := newRevocableIDP(t)
	a, _ := replica(t, "a@coalesce", sharedConfig(idp, srv.addr, nil))
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code := send(a, bearerRequest("tok-burst")).Code; code != http.StatusOK {
				t.Errorf("status %d", code)
			}
		}()
	}
	wg.Wait()
	if n := idp.introspected.Load(); n != 1 {
		t.Errorf("the IdP got %d calls for 20 concurrent requests, want 1", n)
	}
}

func TestSharedTierConfigErrors(t *testing.T) {
	idp := newRevocableIDP(t)
	for _, test := range []struct {
		tune func(*Config)
		want string
	}{
		{func(c *Config) { c.Cache.Redis.Endpoints = []string{"no-port"} }, "cache.redis.endpoints"},
		{func(c *Config) { c.Cache.Redis.Endpoints = nil; c.Cache.Redis.Password = "x" }, "cache.redis.endpoints"},
		{func(c *Config) { c.Cache.Redis.Password = "x"; c.Cache.Redis.PasswordFile = "/x" }, "cache.redis.password:"},
		{func(c *Config) { c.Cache.Redis.PasswordFile = "/does/not/exist" }, "cache.redis.passwordFile"},
		{func(c *Config) { c.Cache.Redis.Database = -1 }, "cache.redis.database"},
		{func(c *Config) { c.Cache.Redis.TimeoutMilliseconds = 20000 }, "cache.redis.timeoutMilliseconds"},
		{func(c *Config) { c.Cache.Redis.LocalTTLSeconds = -1 }, "cache.redis.localTtlSeconds"},
		{func(c *Config) { c.Cache.Redis.TLS = TLSConfig{Cert: "x"} }, "cache.redis.tls"},
		{func(c *Config) { c.Cache.TTLSeconds = 0 }, "cache.redis"},
		{func(c *Config) { c.Revocation.URL = "" }, "revocation.url"},
		{func(c *Config) { c.Revocation.Path = "revoke" }, "revocation.path"},
		{func(c *Config) { c.Revocation.URL = "ftp://idp/revoke" }, "revocation.url"},
	} {
		_, err := New(context.Background(), &upstream{}, sharedConfig(idp, "127.0.0.1:6379", test.tune), "bad@shared")
		if err == nil || !strings.HasPrefix(err.Error(), test.want) {
			t.Errorf("error %v, want one naming %s", err, test.want)
		}
	}
	// A comma-separated string of endpoints, as Traefik decodes "a:1, b:2".
	cfg := sharedConfig(idp, "127.0.0.1:1, 127.0.0.1:2", nil)
	m, _ := replica(t, "list@shared", cfg)
	if got := inner(m).settings.shared.client.endpoints; len(got) != 2 || got[1] != "127.0.0.1:2" {
		t.Errorf("endpoints = %q", got)
	}
	if inner(m).settings.cache.TTLSeconds != 1 {
		t.Errorf("the local TTL is %d with Redis, want localTtlSeconds (1)", inner(m).settings.cache.TTLSeconds)
	}
}

// TestSharedTierConfigBounds: each numeric option of cache.redis takes its bounds and refuses one
// past them; an endpoint needs a port; localTtlSeconds caps both local TTLs without raising one.
func TestSharedTierConfigBounds(t *testing.T) {
	idp := newRevocableIDP(t)
	for _, test := range []struct {
		desc string
		tune func(*Config)
		want string // "" when New must accept the configuration
	}{
		{"empty port", func(c *Config) { c.Cache.Redis.Endpoints = []string{"127.0.0.1:"} }, "cache.redis.endpoints: endpoint 1 is"},
		{"the second one without a port", func(c *Config) { c.Cache.Redis.Endpoints = []string{"127.0.0.1:6379", "127.0.0.1"} }, "cache.redis.endpoints: endpoint 2 is"},
		{"database 0", func(c *Config) { c.Cache.Redis.Database = 0 }, ""},
		{"database at most", func(c *Config) { c.Cache.Redis.Database = maxRedisDatabase }, ""},
		{"database past most", func(c *Config) { c.Cache.Redis.Database = maxRedisDatabase + 1 }, "cache.redis.database"},
		{"timeout 0, the default", func(c *Config) { c.Cache.Redis.TimeoutMilliseconds = 0 }, ""},
		{"timeout -1", func(c *Config) { c.Cache.Redis.TimeoutMilliseconds = -1 }, "cache.redis.timeoutMilliseconds"},
		{"timeout at most", func(c *Config) { c.Cache.Redis.TimeoutMilliseconds = maxRedisTimeoutMs }, ""},
		{"timeout past most", func(c *Config) { c.Cache.Redis.TimeoutMilliseconds = maxRedisTimeoutMs + 1 }, "cache.redis.timeoutMilliseconds"},
		{"local TTL 0, the default", func(c *Config) { c.Cache.Redis.LocalTTLSeconds = 0 }, ""},
		{"local TTL at most", func(c *Config) { c.Cache.Redis.LocalTTLSeconds = maxCacheSeconds }, ""},
		{"local TTL past most", func(c *Config) { c.Cache.Redis.LocalTTLSeconds = maxCacheSeconds + 1 }, "cache.redis.localTtlSeconds"},
	} {
		_, err := New(context.Background(), &upstream{}, sharedConfig(idp, "127.0.0.1:6379", test.tune), "bounds@shared")
		switch {
		case test.want == "" && err != nil:
			t.Errorf("%s: New: %v", test.desc, err)
		case test.want != "" && (err == nil || !strings.HasPrefix(err.Error(), test.want)):
			t.Errorf("%s: error %v, want one naming %s", test.desc, err, test.want)
		}
	}

	for _, test := range []struct {
		desc             string
		ttl, neg, local  int
		wantTTL, wantNeg int
	}{
		{desc: "both above the cap", ttl: 60, neg: 30, local: 5, wantTTL: 5, wantNeg: 5},
		{desc: "no negative caching stays none", ttl: 60, neg: 0, local: 5, wantTTL: 5, wantNeg: 0},
		{desc: "both below the cap", ttl: 3, neg: 2, local: 5, wantTTL: 3, wantNeg: 2},
	} {
		cfg := sharedConfig(idp, "127.0.0.1:6379", func(c *Config) {
			c.Cache.TTLSeconds, c.Cache.NegativeTTLSeconds, c.Cache.Redis.LocalTTLSeconds = test.ttl, test.neg, test.local
		})
		m, _ := replica(t, "cap@shared", cfg)
		local := inner(m).settings.cache
		if local.TTLSeconds != test.wantTTL || local.NegativeTTLSeconds != test.wantNeg {
			t.Errorf("%s: local TTLs %d and %d, want %d and %d", test.desc, local.TTLSeconds, local.NegativeTTLSeconds, test.wantTTL, test.wantNeg)
		}
	}
}

// TestRevocationBodyBound: a body of maxRevocationBody bytes reaches the IdP whole; one byte more
// is refused with 400, and nothing is relayed.
func TestRevocationBodyBound(t *testing.T) {
	idp := newRevocableIDP(t)
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
	m, _ := replica(t, "bound@revocation", cfg)
	// The token comes last, so that a body cut short would revoke another token.
	body := func(token string, size int) string {
		tail := "&token=" + token
		return "pad=" + strings.Repeat("x", size-len("pad=")-len(tail)) + tail
	}
	for _, test := range []struct {
		token    string
		size     int
		expected int
	}{
		{token: "tok-at-bound", size: maxRevocationBody, expected: http.StatusOK},
		{token: "tok-past-bound", size: maxRevocationBody + 1, expected: http.StatusBadRequest},
	} {
		req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(body(test.token, test.size)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", rsBasic)
		expectStatus(t, send(m, req), test.expected)
	}
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if len(idp.revoked) != 1 || !idp.revoked["tok-at-bound"] {
		t.Errorf("the IdP revoked %v, want only tok-at-bound", idp.revoked)
	}
}

// TestRevocationRacesAnIntrospection: an introspection still in flight when the token is revoked
// brings back an answer from before the revocation; stored in Redis, it must not be trusted
// after the marker, however late it arrives.
func TestRevocationRacesAnIntrospection(t *testing.T) {
	srv := startRedis(t)
	idp := newRevocableIDP(t)
	release := make(chan struct{})
	var arrived atomic.Bool
	var revokedAtIdP atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/introspect" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if revokedAtIdP.Load() {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		// The answer is decided now, before the revocation, and delivered after it.
		arrived.Store(true)
		firstReady(release, r.Context().Done())
		_, _ = w.Write([]byte(`{"active":true,"grp":"admin","sub":"raced"}`))
	}))
	t.Cleanup(func() { slow.Close() })
	tune := func(c *Config) {
		c.ClientConfig.URL = slow.URL + "/introspect"
		c.ClientConfig.TimeoutSeconds = 10
		c.Cache.TTLSeconds = 3600
	}
	a, _ := replica(t, "a@race", sharedConfig(idp, srv.addr, tune))
	b, _ := replica(t, "b@race", sharedConfig(idp, srv.addr, tune))
	done := make(chan int, 1)
	go func() { done <- send(a, bearerRequest("tok-race")).Code }()
	waitFor(t, 5*time.Second, "the IdP to take the introspection", arrived.Load)
	expectStatus(t, revokeThrough(b, "tok-race", rsBasic), http.StatusOK)
	revokedAtIdP.Store(true)
	revokedAt := time.Now()
	// Past the marker's margin for the clocks, the old answer arrives and is stored.
	waitFor(t, 5*time.Second, "the margin to pass", func() bool { return time.Since(revokedAt) > 1200*time.Millisecond })
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("the raced request: %d, want 200 (its answer predates the revocation)", code)
	}
	other, _ := replica(t, "c@race", sharedConfig(idp, srv.addr, tune)) // a cold replica
	expectStatus(t, send(other, bearerRequest("tok-race")), http.StatusUnauthorized)
}

// TestRevocationMarksEveryTier: a revocation through a middleware reaches the Redis entries of
// the other middlewares of its Traefik, whatever their key prefix.
func TestRevocationMarksEveryTier(t *testing.T) {
	srv := startRedis(t)
	idp := newRevocableIDP(t)
	long := func(c *Config) { c.Cache.TTLSeconds = 3600 }
	a, _ := replica(t, "a@prefix", sharedConfig(idp, srv.addr, long))
	b, _ := replica(t, "b@prefix", sharedConfig(idp, srv.addr, func(c *Config) { c.Cache.Redis.KeyPrefix = "other:" }))
	expectStatus(t, send(a, bearerRequest("tok-p")), http.StatusOK)
	expectStatus(t, revokeThrough(b, "tok-p", rsBasic), http.StatusOK)
	cold, _ := replica(t, "a2@prefix", sharedConfig(idp, srv.addr, long)) // a's configuration, cold
	expectStatus(t, send(cold, bearerRequest("tok-p")), http.StatusUnauthorized)
}

// TestRevocationBodyTheRelayMustRead: a revocation is relayed only when the middleware reads its
// token exactly as RFC 7009 section 2.1 sends it: one token parameter of a form, no parameter
// twice. Otherwise an IdP that reads more leniently (a multipart form, ";" between parameters)
// could revoke a token the middleware never forgets. Each refusal is a 400 the IdP never sees,
// and the token still passes; a form with a charset is read, and the token is forgotten on every
// handler.
func TestRevocationBodyTheRelayMustRead(t *testing.T) {
	idp := newRevocableIDP(t)
	var relayed atomic.Int32
	lenient := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relayed.Add(1)
		body, _ := io.ReadAll(r.Body)
		for _, kv := range strings.FieldsFunc(string(body), func(c rune) bool { return c == '&' || c == ';' || c == '\n' || c == '"' }) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "token="); ok {
				idp.mu.Lock()
				idp.revoked[v] = true
				idp.mu.Unlock()
			}
		}
	}))
	t.Cleanup(func() { lenient.Close() })
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: lenient.URL}
	a, _ := replica(t, "a@lenient", cfg)
	b, _ := replica(t, "a@lenient", cfg)
	form := "application/x-www-form-urlencoded"
	for _, c := range []struct{ contentType, body string }{
		{form, "token=tok-d&x=a;b"},
		{form, "token_type_hint=access_token;token=tok-d"},
		{form, "token=tok-d&token=tok-e"},
		{form, "token=tok-d&token_type_hint=a&token_type_hint=b"},
		{form, "token="},
		{form, "token_type_hint=access_token"},
		{form, "token=tok-d&%zz"},
		{"multipart/form-data; boundary=x", "--x\nContent-Disposition: form-data; name=\"token\"\n\ntoken=tok-d\n--x--"},
		{"application/json", `{"token":"tok-d"}`},
		{"text/plain", "token=tok-d"}, // a body that reads as a form, of another type
		{"multipart/form-data; boundary=x", "token=tok-d"},
		{"", "token=tok-d"},
	} {
		expectStatus(t, send(a, bearerRequest("tok-d")), http.StatusOK)
		req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		rec := send(b, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error":"invalid_request"`) {
			t.Errorf("%q (%s): %d %q, want 400 invalid_request", c.body, c.contentType, rec.Code, rec.Body.String())
		}
	}
	if n := relayed.Load(); n != 0 {
		t.Fatalf("%d refused revocations reached the IdP", n)
	}
	expectStatus(t, send(a, bearerRequest("tok-d")), http.StatusOK)

	req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader("token=tok-d&token_type_hint=access_token"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	expectStatus(t, send(b, req), http.StatusOK)
	reloaded, _ := replica(t, "a@lenient", cfg)
	for name, h := range map[string]http.Handler{"first handler": a, "second handler": b, "second New": reloaded} {
		if code := send(h, bearerRequest("tok-d")).Code; code != http.StatusUnauthorized {
			t.Errorf("%s after the revocation: %d, want 401", name, code)
		}
	}
}

// TestSharedTierBlackhole: a Redis that takes connections and never answers costs a miss one
// timeout (the read), not two: nothing is written after a failed read.
func TestSharedTierBlackhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	idp := newRevocableIDP(t)
	a, _ := replica(t, "a@hole", sharedConfig(idp, ln.Addr().String(), func(c *Config) { c.Cache.Redis.TimeoutMilliseconds = 300 }))
	start := time.Now()
	expectStatus(t, send(a, bearerRequest("tok-h1")), http.StatusOK)
	if took := time.Since(start); took > 550*time.Millisecond {
		t.Errorf("a miss took %v with a silent Redis and a 300 ms timeout: more than one timeout", took)
	}
}
