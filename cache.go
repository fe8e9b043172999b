package oauthintrospection

import (
	"crypto/sha256"
	"net/http"
	"sync"
	"sync/atomic"
)

// cacheKey is the SHA-256 of a token (and of the rendered header templates, if any). An array key
// costs the interpreter less than a string conversion of the digest (docs/development.md,
// interpreter costs).
type cacheKey [sha256.Size]byte

// cacheEntry is one cached verdict. Times are Unix seconds.
type cacheEntry struct {
	v          *verdict
	freshUntil int64 // reused until then
	staleUntil int64 // served when the IdP cannot be reached until then (0: never)
	// For the fast path: an allowing verdict lets requests through from passFrom (its nbf) until
	// passUntil (the earlier of freshUntil and its exp); passUntil is 0 for any other verdict.
	passFrom  int64
	passUntil int64
	slot      int // its place in the eviction ring
	size      int // the bytes it is accounted for
}

// pending is an introspection in flight; requests that bring the same token wait for it.
type pending struct {
	done    chan struct{}
	v       *verdict
	waiters atomic.Int32 // requests waiting on it besides the leader; tests read it
	// revoked is set, under the cache's lock, when the token is revoked while p is in flight
	// (forgetRevoked): its answer may predate the revocation, so it is not cached, and requests
	// that come after the revocation do not wait for it.
	revoked bool
}

// verdictCache maps a token digest to its verdict, and coalesces concurrent misses. Memory is bounded
// twice: by a ring of maxEntries slots, where every entry owns one slot and inserting into a full
// ring evicts the oldest insertion in O(1), and by maxBytes, the sum of the entries' sizes, which
// evicts oldest-first too. Oldest-first is as good as LRU here because every entry expires within
// TTLSeconds anyway, and a hit then needs only a read lock: it moves nothing.
type verdictCache struct {
	mu       sync.RWMutex
	entries  map[cacheKey]*cacheEntry
	ring     []cacheKey // insertion order; grows up to max slots
	head     int        // the oldest slot in use
	used     int        // slots in use, from head on (some may belong to removed entries)
	max      int
	bytes    int // the sum of the entries' sizes
	maxBytes int
	inflight map[cacheKey]*pending
	keyed    bool // its keys digest rendered header templates besides the token (tokenKey)
	ttl      int64
	negTTL   int64
	stale    int64
}

func newVerdictCache(c CacheConfig) *verdictCache {
	return &verdictCache{
		entries:  map[cacheKey]*cacheEntry{},
		inflight: map[cacheKey]*pending{},
		ttl:      int64(c.TTLSeconds),
		negTTL:   int64(c.NegativeTTLSeconds),
		stale:    int64(c.StaleIfErrorSeconds),
		max:      c.MaxEntries,
		maxBytes: c.MaxBytes,
	}
}

// cachedEntry returns the entry for key, fresh or not, or nil.
func cachedEntry(c *verdictCache, key cacheKey) *cacheEntry {
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	return e
}

// join registers interest in key. The first caller becomes the leader, which must call publish;
// the others get the same pending and wait for it.
func join(c *verdictCache, key cacheKey) (*pending, bool) {
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

// publish ends the introspection p of key: it records what the leader learned and then releases
// the waiters with v. When e is not nil it becomes the key's entry; otherwise, when drop is set,
// the key's entry is removed, so that an answer that may not be cached still replaces an older one.
//
// An introspection that a revocation overtook changes no entry: the revocation removed the old
// one, and whatever is there now came after it.
func publish(c *verdictCache, key cacheKey, p *pending, v *verdict, e *cacheEntry, drop bool) {
	p.v = v
	c.mu.Lock()
	switch {
	case p.revoked:
	case e != nil:
		put(c, key, e)
	case drop:
		removeEntry(c, key)
	}
	if c.inflight[key] == p {
		delete(c.inflight, key)
	}
	c.mu.Unlock()
	close(p.done)
}

// newEntry returns the cache entry of v, decided at now, or nil when v may not be cached.
func newEntry(c *verdictCache, v *verdict, now int64) *cacheEntry {
	if c.ttl <= 0 {
		return nil
	}
	// Locals rather than the entry's fields until the end: each selector costs a frame slot.
	size := entryOverhead
	if v.user != nil {
		size += len(v.user.Username())
	}
	for _, value := range v.values {
		size += len(value)
	}
	var fresh, stale int64
	switch v.status {
	case 0, statusForbidden:
		// An active answer: its verdict depends only on the answer and the immutable config.
		fresh = capAt(now+c.ttl, v.exp)
		if c.stale > 0 {
			stale = capAt(fresh+c.stale, v.exp)
		}
	case statusUnauthorized:
		// Without negative caching fresh is now, and the entry is not kept. resolveMiss relies on
		// that and does not call newEntry for such a refusal: keep the two rules together.
		fresh = now + c.negTTL
	default:
		return nil // failures
	}
	if fresh <= now || size > c.maxBytes {
		return nil
	}
	e := &cacheEntry{v: v, freshUntil: fresh, staleUntil: stale, size: size}
	if v.status == 0 {
		// setPass, written out: fresh is capped at exp already.
		e.passFrom, e.passUntil = v.nbf, fresh
	}
	return e
}

// setPass sets the window in which the fast path lets requests through on e: validAt's bounds,
// with exp capped at freshUntil, for an allowing verdict; none (passUntil 0) for any other.
func setPass(e *cacheEntry) {
	if e.v.status == 0 {
		e.passFrom = e.v.nbf
		e.passUntil = capAt(e.freshUntil, e.v.exp)
	}
}

// staleRetrySeconds is how long a stale answer serves before the IdP is asked again: during an
// outage each cached token costs at most one failing call a second, not one per request.
const staleRetrySeconds = 1

// stillStale returns a copy of old that serves for staleRetrySeconds more, never past staleUntil.
func stillStale(old *cacheEntry, now int64) *cacheEntry {
	e := *old
	e.freshUntil = capAt(now+staleRetrySeconds, old.staleUntil)
	setPass(&e)
	return &e
}

// put makes e the entry of key, evicting the oldest entries while either bound is exceeded. A
// replaced entry keeps its slot. It is called with the write lock held.
func put(c *verdictCache, key cacheKey, e *cacheEntry) {
	if old := c.entries[key]; old != nil {
		e.slot = old.slot
		c.bytes -= old.size
	} else {
		if c.used == c.max {
			evictOldest(c)
		}
		e.slot = (c.head + c.used) % c.max
		if e.slot == len(c.ring) {
			c.ring = append(c.ring, key)
		} else {
			c.ring[e.slot] = key
		}
		c.used++
	}
	c.entries[key] = e
	c.bytes += e.size
	for c.bytes > c.maxBytes && c.used > 0 {
		evictOldest(c)
	}
}

// evictOldest frees the oldest slot, and removes its entry if the entry still owns it.
func evictOldest(c *verdictCache) {
	key := c.ring[c.head]
	if e := c.entries[key]; e != nil && e.slot == c.head {
		delete(c.entries, key)
		c.bytes -= e.size
	}
	c.head++
	if c.head == c.max {
		c.head = 0
	}
	c.used--
}

// removeEntry deletes the entry of key. Its slot stays in the ring until eviction reaches it, so the
// ring needs no reordering. It is called with the write lock held.
func removeEntry(c *verdictCache, key cacheKey) {
	if e := c.entries[key]; e != nil {
		delete(c.entries, key)
		c.bytes -= e.size
	}
}

// forgetEntry removes the entry of key, if any.
func forgetEntry(c *verdictCache, key cacheKey) {
	c.mu.Lock()
	removeEntry(c, key)
	c.mu.Unlock()
}

// forgetAll removes every entry, and overtakes every introspection in flight (forgetRevoked). It
// is called with the write lock held.
func forgetAll(c *verdictCache) {
	// In place: the fast path holds the map.
	for key := range c.entries {
		delete(c.entries, key)
	}
	c.ring = c.ring[:0]
	c.head, c.used, c.bytes = 0, 0, 0
	for key := range c.inflight {
		overtake(c, key)
	}
}

// forgetRevoked removes the entry of a revoked token's key, and overtakes its introspection in
// flight, if any: that answer is not cached when it comes, and the requests that come after the
// revocation start an introspection of their own instead of waiting for it (RFC 7009 section 2:
// once revoked, the token is not to be accepted). It is called with the write lock held.
func forgetRevoked(c *verdictCache, key cacheKey) {
	removeEntry(c, key)
	overtake(c, key)
}

// overtake marks the introspection of key in flight, if any, as overtaken by a revocation, and
// takes it out of inflight, so that the next request for key leads one of its own. It is called
// with the write lock held.
func overtake(c *verdictCache, key cacheKey) {
	if p := c.inflight[key]; p != nil {
		p.revoked = true
		delete(c.inflight, key)
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
