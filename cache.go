package oauthintrospection

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
)

// CacheConfig configures the introspection cache. A cached answer never skips a check: exp and nbf
// are checked again on every hit, and the lifetime of an entry never passes the token's exp.
type CacheConfig struct {
	// TTLSeconds is how long an active answer is reused, capped by the token's exp.
	// CreateConfig sets 30; zero disables the cache.
	TTLSeconds int
	// MaxEntries bounds the number of cached answers; the oldest is evicted first.
	// If zero, 10000 is used.
	MaxEntries int
	// NegativeTTLSeconds is how long an inactive answer is reused. If zero, inactive answers are not cached.
	NegativeTTLSeconds int
	// StaleIfErrorSeconds lets an active answer serve this long past its TTL while the IdP is
	// failing, never past the token's exp. If zero, a failing IdP always gives 503.
	StaleIfErrorSeconds int
}

const (
	defaultCacheTTL        = 30
	defaultCacheMaxEntries = 10000
	maxCacheSeconds        = 86400
	maxCacheEntries        = 1000000
)

// cacheKey is the SHA-256 of a token (and of the rendered header templates, if any). An array key
// costs the interpreter a third of what a string conversion of the digest does.
type cacheKey [sha256.Size]byte

// cacheEntry is one cached verdict. Times are Unix seconds.
type cacheEntry struct {
	v          *verdict
	freshUntil int64 // reused until then
	staleUntil int64 // served when the IdP fails until then (0: never)
	slot       int   // its place in the eviction ring
	// For the fast path: an allowing verdict lets requests through from passFrom (its nbf) until
	// passUntil (the earlier of freshUntil and its exp); passUntil is 0 for any other verdict.
	passFrom  int64
	passUntil int64
}

// pending is an introspection in flight; requests that bring the same token wait for it.
type pending struct {
	done    chan struct{}
	v       *verdict
	waiters atomic.Int32 // requests waiting on it besides the leader; tests read it
}

// verdictCache maps a token digest to its verdict, and coalesces concurrent misses. Memory is bounded
// by a ring of maxEntries slots: every entry owns one slot, so the map never holds more entries than
// there are slots, and inserting into a full ring evicts the oldest insertion in O(1). Oldest-first
// is as good as LRU here because every entry expires within TTLSeconds anyway, and a hit then needs
// only a read lock: it moves nothing.
type verdictCache struct {
	mu       sync.RWMutex
	entries  map[cacheKey]*cacheEntry
	ring     []cacheKey // grows up to max, then each insertion reuses the oldest slot
	max      int
	next     int
	inflight map[cacheKey]*pending
	ttl      int64
	negTTL   int64
	stale    int64
}

func newVerdictCache(c CacheConfig) *verdictCache {
	vc := &verdictCache{
		entries:  map[cacheKey]*cacheEntry{},
		inflight: map[cacheKey]*pending{},
		ttl:      int64(c.TTLSeconds),
		negTTL:   int64(c.NegativeTTLSeconds),
		stale:    int64(c.StaleIfErrorSeconds),
		max:      c.MaxEntries,
	}
	return vc
}

// get returns the entry for key, fresh or not, or nil.
func (c *verdictCache) get(key cacheKey) *cacheEntry {
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	return e
}

// len returns the number of entries.
func (c *verdictCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// join registers interest in key. The first caller becomes the leader, which must call finish; the
// others get the same pending and wait for it.
func (c *verdictCache) join(key cacheKey) (*pending, bool) {
	c.mu.Lock()
	if p := c.inflight[key]; p != nil {
		c.mu.Unlock()
		return p, false
	}
	p := &pending{done: make(chan struct{})}
	c.inflight[key] = p
	c.mu.Unlock()
	return p, true
}

// finish publishes the leader's verdict to its waiters and caches it when it may be cached.
func (c *verdictCache) finish(key cacheKey, p *pending, v *verdict, now int64, cacheable bool) {
	p.v = v
	c.mu.Lock()
	delete(c.inflight, key)
	if cacheable {
		c.store(key, v, now)
	}
	c.mu.Unlock()
	close(p.done)
}

// staleRetrySeconds is how long a stale answer serves before the IdP is asked again: during an
// outage each cached token costs at most one failing call a second, not one per request.
const staleRetrySeconds = 1

// finishStale publishes the stale verdict of old to the waiters, and serves it for
// staleRetrySeconds more (never past staleUntil) before the IdP is tried again.
func (c *verdictCache) finishStale(key cacheKey, p *pending, old *cacheEntry, now int64) {
	p.v = old.v
	c.mu.Lock()
	delete(c.inflight, key)
	if c.entries[key] == old {
		e := *old
		e.freshUntil = capAt(now+staleRetrySeconds, old.staleUntil)
		if e.passUntil != 0 {
			e.passUntil = capAt(e.freshUntil, old.v.exp)
		}
		c.entries[key] = &e
	}
	c.mu.Unlock()
	close(p.done)
}

// store caches v under key. It is called with the write lock held.
func (c *verdictCache) store(key cacheKey, v *verdict, now int64) {
	if c.ttl <= 0 {
		return
	}
	e := &cacheEntry{v: v}
	switch {
	case v.status == 0 || v.status == http.StatusForbidden:
		// An active answer: its verdict depends only on the answer and the immutable config.
		e.freshUntil = capAt(now+c.ttl, v.exp)
		if c.stale > 0 {
			e.staleUntil = capAt(e.freshUntil+c.stale, v.exp)
		}
	case v.status == http.StatusUnauthorized && c.negTTL > 0:
		e.freshUntil = now + c.negTTL
	default:
		return // failures are never cached
	}
	if e.freshUntil <= now {
		return
	}
	if v.status == 0 {
		e.passFrom = v.nbf
		e.passUntil = capAt(e.freshUntil, v.exp)
	}
	if old := c.entries[key]; old != nil {
		e.slot = old.slot
		c.entries[key] = e
		return
	}
	if len(c.ring) < c.max {
		e.slot = len(c.ring)
		c.ring = append(c.ring, key)
		c.entries[key] = e
		return
	}
	e.slot = c.next
	// The slot's previous key, if its entry still owns the slot, is the oldest insertion: evict it.
	victim := c.ring[e.slot]
	if ve := c.entries[victim]; ve != nil && ve.slot == e.slot {
		delete(c.entries, victim)
	}
	c.ring[e.slot] = key
	c.entries[key] = e
	c.next++
	if c.next == c.max {
		c.next = 0
	}
}

// capAt returns t, or limit when limit comes first.
func capAt(t, limit int64) int64 {
	if limit < t {
		return limit
	}
	return t
}

// tokenKey is the cache key of a token: its SHA-256, never the token itself. The cache belongs to
// one configuration (so one endpoint and hint); rendered header templates can make the answer depend
// on the request, so their values are part of the key.
func tokenKey(token string, rendered http.Header, templated []headerTemplate) cacheKey {
	if len(templated) == 0 {
		return sha256.Sum256([]byte(token))
	}
	h := sha256.New()
	h.Write([]byte(token))
	for _, t := range templated {
		h.Write([]byte{0})
		h.Write([]byte(rendered.Get(t.name)))
	}
	var key cacheKey
	copy(key[:], h.Sum(nil))
	return key
}

// shared is what all handlers of one middleware with one configuration share across reloads.
type shared struct {
	fingerprint string
	cache       *verdictCache
	idp         *idpClient
	log         *logger
}

// The registry keeps the cache and the IdP client of each middleware name. Traefik calls New on
// every dynamic-configuration reload, even an unrelated one; an unchanged configuration gets its warm
// cache back, a changed one replaces it. One entry per middleware name bounds the registry.
var (
	registryMu sync.Mutex
	registry   = map[string]*shared{}
)

// sharedFor returns the shared state of the middleware name with configuration cfg.
func sharedFor(name string, cfg *Config, s *settings) *shared {
	fp := fingerprint(cfg)
	registryMu.Lock()
	defer registryMu.Unlock()
	if sh := registered(name, fp); sh != nil {
		return sh
	}
	sh := &shared{fingerprint: fp, cache: newVerdictCache(s.cache), idp: newIDPClient(s), log: newLogger(name)}
	registry[name] = sh
	return sh
}

// registered returns the registry's state for name when its fingerprint is fp. It is a function
// of its own so that no frame of sharedFor keeps a replaced state alive (seen under Yaegi).
func registered(name, fp string) *shared {
	if sh := registry[name]; sh != nil && sh.fingerprint == fp {
		return sh
	}
	return nil
}

// fingerprint digests every option. fmt prints maps with sorted keys, so equal configurations give
// equal fingerprints.
func fingerprint(cfg *Config) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%#v", *cfg)))
	return string(sum[:])
}

// cached returns the verdict for token, from the cache or from the IdP.
func (m *middleware) cached(req *http.Request, token string, now int64) *verdict {
	rendered, err := m.idp.renderHeaders(req)
	if err != nil {
		m.logf("error", "introspection failed: "+err.Error())
		return reject(http.StatusServiceUnavailable, nil, "introspection failed")
	}
	key := tokenKey(token, rendered, m.idp.templated)
	if e := m.cache.get(key); e != nil && now < e.freshUntil {
		return e.v
	}
	return m.resolve(req, token, rendered, key, now)
}

// resolve handles a miss: one introspection per key at a time, whatever the number of requests
// waiting for it. A waiter gives up when its own request ends.
func (m *middleware) resolve(req *http.Request, token string, rendered http.Header, key cacheKey, now int64) *verdict {
	p, leader := m.cache.join(key)
	if !leader {
		p.waiters.Add(1)
		if firstReady(p.done, req.Context().Done()) {
			return p.v
		}
		return reject(http.StatusServiceUnavailable, nil, "request ended while waiting for introspection")
	}
	// The call outlives the leader's request if that one is cancelled: others may be waiting.
	v := m.introspect(context.WithoutCancel(req.Context()), rendered, token)
	if old := m.cache.get(key); v.status == http.StatusServiceUnavailable && old != nil && now < old.staleUntil {
		m.logf("debug", "IdP failing: serving a cached answer past its TTL (staleIfErrorSeconds)")
		m.cache.finishStale(key, p, old, now)
		return old.v
	}
	m.cache.finish(key, p, v, now, true)
	return v
}

// firstReady blocks until channel a or b can receive and reports whether it was a. It stands in for
// a select statement: Yaegi v0.16.1 keeps one case list per select statement and shares it between
// goroutines, so two requests in the same select race and may wait on each other's channels
// (go test -race on the Yaegi harness shows it). reflect.Select gets a fresh list on every call.
func firstReady(a, b any) bool {
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(a)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(b)},
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen == 0
}
