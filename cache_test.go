package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// storeVerdict caches v under key as the leader of a miss would, decided at now.
func storeVerdict(c *verdictCache, key cacheKey, v *verdict, now int64) {
	p, _ := join(c, key)
	publish(c, key, p, v, newEntry(c, v, now), true)
}

// cacheLen returns the number of entries in c.
func cacheLen(c *verdictCache) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func TestCacheHitSkipsTheIdP(t *testing.T) {
	rig := newCacheRig(t, "hit@test", answerJSON(`{"active":true,"grp":"admin","exp":`+futureExp()+`}`), nil)
	expectStatus(t, rig.do("tok"), http.StatusOK)
	expectStatus(t, rig.do("tok"), http.StatusOK)
	if rig.calls() != 1 {
		t.Errorf("IdP calls = %d, want 1", rig.calls())
	}
	seen, _ := rig.up.seen()
	expectEqual(t, "Group on a hit", seen.Header.Get("Group"), "admin")
	expectStatus(t, rig.do("other"), http.StatusOK)
	if rig.calls() != 2 {
		t.Errorf("another token: IdP calls = %d, want 2", rig.calls())
	}
}

// TestCacheNeverStoresTheToken checks that the cache is keyed by a digest.
func TestCacheNeverStoresTheToken(t *testing.T) {
	rig := newCacheRig(t, "digest@test", answerJSON(`{"active":true,"grp":"admin"}`), nil)
	expectStatus(t, rig.do("secret-token-value"), http.StatusOK)
	rig.m.cache.mu.RLock()
	defer rig.m.cache.mu.RUnlock()
	want := cacheKey(sha256.Sum256([]byte("secret-token-value")))
	if len(rig.m.cache.entries) != 1 || rig.m.cache.entries[want] == nil {
		t.Errorf("the cache is not keyed by the token's SHA-256")
	}
}

// TestCacheRechecksExpAndNbfOnHit plants fresh entries whose verdicts say the token is expired, or
// not yet valid: a hit must reject them without asking the IdP.
func TestCacheRechecksExpAndNbfOnHit(t *testing.T) {
	now := time.Now().Unix()
	testCases := []struct {
		desc     string
		exp, nbf int64
		want     int
	}{
		{desc: "exp passed", exp: now - 1, nbf: now - 100, want: http.StatusUnauthorized},
		{desc: "nbf ahead", exp: now + 100, nbf: now + 50, want: http.StatusUnauthorized},
		{desc: "valid", exp: now + 100, nbf: now - 100, want: http.StatusOK},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			rig := newCacheRig(t, "recheck-"+test.desc+"@test", answerJSON(`{"active":true}`), nil)
			key := tokenKey("tok", nil, nil)
			v := &verdict{exp: test.exp, nbf: test.nbf, names: []string{"Group"}, values: []string{"admin"}}
			rig.m.cache.mu.Lock()
			rig.m.cache.entries[key] = &cacheEntry{v: v, freshUntil: now + 1000}
			rig.m.cache.mu.Unlock()
			rec := rig.do("tok")
			expectStatus(t, rec, test.want)
			if rig.calls() != 0 {
				t.Errorf("IdP calls = %d, want 0 (the entry was fresh)", rig.calls())
			}
			if test.want == http.StatusUnauthorized {
				expectEqual(t, "challenge", rec.Header().Get("WWW-Authenticate"), challengeInvalidToken)
			}
		})
	}
}

func TestCacheLifetimeIsCappedByExp(t *testing.T) {
	now := time.Now().Unix()
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 10, MaxBytes: 1 << 20, StaleIfErrorSeconds: 600})
	storeVerdict(c, tokenKey("short", nil, nil), &verdict{exp: now + 5}, now)
	storeVerdict(c, tokenKey("long", nil, nil), &verdict{exp: now + 3600}, now)
	storeVerdict(c, tokenKey("none", nil, nil), reject(0, nil, ""), now)
	storeVerdict(c, tokenKey("gone", nil, nil), &verdict{exp: now}, now)
	checks := []struct {
		key          string
		fresh, stale int64
	}{
		{"short", now + 5, now + 5},
		{"long", now + 30, now + 630},
		{"none", now + 30, now + 630},
	}
	for _, want := range checks {
		e := cachedEntry(c, tokenKey(want.key, nil, nil))
		if e == nil {
			t.Errorf("%s: not cached", want.key)
			continue
		}
		if e.freshUntil != want.fresh || e.staleUntil != want.stale {
			t.Errorf("%s: fresh/stale until = %d/%d, want %d/%d", want.key, e.freshUntil-now, e.staleUntil-now, want.fresh-now, want.stale-now)
		}
	}
	if cachedEntry(c, tokenKey("gone", nil, nil)) != nil {
		t.Errorf("an already expired answer was cached")
	}
}

func TestNegativeCaching(t *testing.T) {
	testCases := []struct {
		desc      string
		negTTL    int
		wantCalls int
	}{
		{desc: "inactive answers are not cached by default", negTTL: 0, wantCalls: 2},
		{desc: "negativeTtlSeconds caches them", negTTL: 60, wantCalls: 1},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			negTTL := test.negTTL
			rig := newCacheRig(t, fmt.Sprintf("neg%d@test", negTTL), answerJSON(`{"active":false}`), func(c *Config) { c.Cache.NegativeTTLSeconds = negTTL })
			expectStatus(t, rig.do("revoked"), http.StatusUnauthorized)
			expectStatus(t, rig.do("revoked"), http.StatusUnauthorized)
			if rig.calls() != test.wantCalls {
				t.Errorf("IdP calls = %d, want %d", rig.calls(), test.wantCalls)
			}
		})
	}
}

func TestCacheDisabledAndFailuresNeverCached(t *testing.T) {
	rig := newCacheRig(t, "off@test", answerJSON(`{"active":true,"grp":"admin"}`), func(c *Config) { c.Cache.TTLSeconds = 0 })
	expectStatus(t, rig.do("tok"), http.StatusOK)
	expectStatus(t, rig.do("tok"), http.StatusOK)
	if rig.calls() != 2 {
		t.Errorf("ttlSeconds 0: IdP calls = %d, want 2", rig.calls())
	}
	failing := newCacheRig(t, "fail@test", answerStatus(http.StatusBadRequest), nil)
	expectStatus(t, failing.do("tok"), http.StatusServiceUnavailable)
	expectStatus(t, failing.do("tok"), http.StatusServiceUnavailable)
	if failing.calls() != 2 {
		t.Errorf("failures: IdP calls = %d, want 2", failing.calls())
	}
}

// TestCoalescing sends 100 concurrent requests with one new token: exactly one IdP call is made
// and every request gets its answer.
func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	rig := newCacheRig(t, "coalesce@test", func(w http.ResponseWriter, r *http.Request, call int) {
		<-release
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, nil)
	const n = 100
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = rig.do("fresh-token").Code
		}(i)
	}
	key := tokenKey("fresh-token", nil, nil)
	waitFor(t, 10*time.Second, "99 requests waiting on the leader", func() bool {
		rig.m.cache.mu.RLock()
		p := rig.m.cache.inflight[key]
		rig.m.cache.mu.RUnlock()
		return p != nil && p.waiters.Load() == n-1
	})
	close(release)
	wg.Wait()
	if rig.calls() != 1 {
		t.Errorf("IdP calls = %d, want 1", rig.calls())
	}
	for i, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200", i, code)
		}
	}
}

// TestCoalescingWaiterLeavesWithItsContext shows that a waiter gives up when its own request ends,
// while the leader's call carries on for the others.
func TestCoalescingWaiterLeavesWithItsContext(t *testing.T) {
	release := make(chan struct{})
	rig := newCacheRig(t, "leave@test", func(w http.ResponseWriter, r *http.Request, call int) {
		<-release
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, nil)
	leaderDone := make(chan int, 1)
	go func() { leaderDone <- rig.do("slow").Code }()
	key := tokenKey("slow", nil, nil)
	waitFor(t, 10*time.Second, "the leader in flight", func() bool {
		rig.m.cache.mu.RLock()
		defer rig.m.cache.mu.RUnlock()
		return rig.m.cache.inflight[key] != nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/api", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer slow")
	rec := httptest.NewRecorder()
	rig.m.ServeHTTP(rec, req)
	expectStatus(t, rec, http.StatusServiceUnavailable)
	close(release)
	if code := <-leaderDone; code != http.StatusOK {
		t.Errorf("leader status = %d, want 200", code)
	}
}

// TestCacheBound inserts 1,000,000 distinct bogus tokens through the miss path with negative
// caching on: the entry count never exceeds maxEntries, and the newest entries are kept. Under the
// interpreter, where the loop costs about 270 µs a token, 50,000 tokens (50 × maxEntries) are used.
func TestCacheBound(t *testing.T) {
	const maxEntries = 1000
	total := 1000000
	if interpreted || testing.Short() {
		total = 50000
	}
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: maxEntries, MaxBytes: defaultCacheMaxBytes, NegativeTTLSeconds: 60})
	now := time.Now().Unix()
	inactive := reject(http.StatusUnauthorized, challengeInvalid, "token is not active")
	for i := 0; i < total; i++ {
		storeVerdict(c, tokenKey("bogus-"+fmt.Sprint(i), nil, nil), inactive, now)
		if i%10000 == 0 && cacheLen(c) > maxEntries {
			t.Fatalf("after %d tokens: %d entries, over %d", i+1, cacheLen(c), maxEntries)
		}
	}
	if cacheLen(c) != maxEntries {
		t.Errorf("entries = %d, want %d", cacheLen(c), maxEntries)
	}
	if cachedEntry(c, tokenKey("bogus-"+fmt.Sprint(total-1), nil, nil)) == nil {
		t.Errorf("the newest entry was evicted")
	}
	if cachedEntry(c, tokenKey("bogus-0", nil, nil)) != nil {
		t.Errorf("the oldest entry was kept")
	}
}

// TestReloadKeepsTheCacheOfAnUnchangedConfig calls New again, as a reload does: an unchanged
// configuration reuses the warm cache, a changed one does not reuse the other's verdicts.
func TestReloadKeepsTheCacheOfAnUnchangedConfig(t *testing.T) {
	idp := newFakeIDP(t, answerJSON(`{"active":true,"grp":"admin"}`))
	build := func(claims string) *middleware {
		cfg := bearerConfig(idp.srv.URL)
		cfg.Claims = claims
		h, err := New(context.Background(), &upstream{}, cfg, "reload@test")
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return h.(*middleware)
	}
	do := func(m *middleware) int {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		return rec.Code
	}
	first := build("Equals(`grp`, `admin`)")
	if code := do(first); code != http.StatusOK {
		t.Fatalf("status = %d, want 200", code)
	}
	again := build("Equals(`grp`, `admin`)")
	if again.cache != first.cache {
		t.Errorf("an unchanged configuration got a new cache")
	}
	if code := do(again); code != http.StatusOK {
		t.Errorf("after reload: status = %d, want 200", code)
	}
	if calls, _, _ := idp.snapshot(); calls != 1 {
		t.Errorf("IdP calls = %d, want 1 (warm cache)", calls)
	}
	changed := build("Equals(`grp`, `ops`)")
	if changed.cache == first.cache {
		t.Errorf("a changed configuration reused the old cache")
	}
	if code := do(changed); code != http.StatusForbidden {
		t.Errorf("changed claims: status = %d, want 403", code)
	}
	if calls, _, _ := idp.snapshot(); calls != 2 {
		t.Errorf("IdP calls = %d, want 2", calls)
	}
}

func TestStaleIfError(t *testing.T) {
	testCases := []struct {
		desc       string
		staleUntil int64 // relative to now
		want       int
	}{
		{desc: "within staleIfErrorSeconds the cached answer serves", staleUntil: 60, want: http.StatusOK},
		{desc: "past it the IdP failure shows", staleUntil: -1, want: http.StatusServiceUnavailable},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			rig := newCacheRig(t, "stale"+fmt.Sprint(test.staleUntil)+"@test", answerStatus(http.StatusBadGateway), func(c *Config) {
				c.Cache.StaleIfErrorSeconds = 600
				c.ClientConfig.MaxRetries = 0
			})
			now := time.Now().Unix()
			key := tokenKey("tok", nil, nil)
			v := &verdict{exp: now + 3600, nbf: now - 10, names: []string{"Group"}, values: []string{"admin"}}
			rig.m.cache.mu.Lock()
			rig.m.cache.entries[key] = &cacheEntry{v: v, freshUntil: now - 1, staleUntil: now + test.staleUntil}
			rig.m.cache.mu.Unlock()
			expectStatus(t, rig.do("tok"), test.want)
			if rig.calls() != 1 {
				t.Errorf("IdP calls = %d, want 1 (an expired entry is refreshed first)", rig.calls())
			}
			if test.want != http.StatusOK {
				return
			}
			// Served stale, the answer is re-armed for staleRetrySeconds (never past staleUntil):
			// the next request does not wait for another failing call.
			e := cachedEntry(rig.m.cache, key)
			if e == nil || e.freshUntil <= now || e.freshUntil > now+staleRetrySeconds+1 || e.staleUntil != now+test.staleUntil {
				t.Fatalf("entry after a stale answer: %+v", e)
			}
			expectStatus(t, rig.do("tok"), http.StatusOK)
			// Time is in whole seconds: only when the clock has not reached freshUntil yet must the
			// second request have been a hit.
			if time.Now().Unix() < e.freshUntil && rig.calls() != 1 {
				t.Errorf("IdP calls = %d, want still 1", rig.calls())
			}
		})
	}
}

// TestInactiveAnswerReplacesCachedOne: once the IdP has said a token is inactive, no earlier
// positive answer may come back, not even through staleIfErrorSeconds while the IdP fails, whether
// or not inactive answers are cached.
func TestInactiveAnswerReplacesCachedOne(t *testing.T) {
	for _, negTTL := range []int{0, 60} {
		negTTL := negTTL
		t.Run(fmt.Sprintf("negativeTtlSeconds %d", negTTL), func(t *testing.T) {
			answers := []func(w http.ResponseWriter, r *http.Request, call int){
				answerJSON(`{"active":true,"grp":"admin","exp":` + futureExp() + `}`),
				answerJSON(`{"active":false}`),
				answerStatus(http.StatusBadGateway),
			}
			rig := newCacheRig(t, fmt.Sprintf("revoked-stale-%d@test", negTTL), func(w http.ResponseWriter, r *http.Request, call int) {
				answers[capIndex(call-1, len(answers))](w, r, call)
			}, func(c *Config) {
				c.Cache.StaleIfErrorSeconds = 600
				c.Cache.NegativeTTLSeconds = negTTL
				c.ClientConfig.MaxRetries = 0
			})
			key := tokenKey("tok", nil, nil)
			expectStatus(t, rig.do("tok"), http.StatusOK)
			expire(rig.m.cache, key) // the TTL passes
			expectStatus(t, rig.do("tok"), http.StatusUnauthorized)
			expire(rig.m.cache, key) // and so does the negative TTL, if any
			expectStatus(t, rig.do("tok"), http.StatusServiceUnavailable)
			if rig.calls() != 3 {
				t.Errorf("IdP calls = %d, want 3", rig.calls())
			}
		})
	}
}

// capIndex returns i, or the last index of a list of n when i is past it.
func capIndex(i, n int) int {
	if i >= n {
		return n - 1
	}
	return i
}

// expire moves the entry of key past its fresh window, as the passing of its TTL would, and keeps
// its stale window.
func expire(c *verdictCache, key cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		moved := *e
		moved.freshUntil = time.Now().Unix() - 1
		moved.passUntil = 0
		c.entries[key] = &moved
	}
}

// TestExpIsJudgedWhenTheAnswerArrives: the IdP may take up to timeoutSeconds to answer, and a token
// that expired meanwhile must not pass. The IdP here answers only once the exp it reports has come.
func TestExpIsJudgedWhenTheAnswerArrives(t *testing.T) {
	rig := newCacheRig(t, "exp-at-answer@test", func(w http.ResponseWriter, r *http.Request, call int) {
		exp := time.Now().Unix() + 1
		for time.Now().Unix() < exp {
			time.Sleep(10 * time.Millisecond)
		}
		answerJSON(`{"active":true,"grp":"admin","exp":`+fmt.Sprint(exp)+`}`)(w, r, call)
	}, nil)
	rec := rig.do("slow-answer")
	expectStatus(t, rec, http.StatusUnauthorized)
	expectEqual(t, "challenge", rec.Header().Get("WWW-Authenticate"), challengeInvalidToken)
}

// TestLeaderPanicReleasesWaiters: a panic in the request that leads a coalesced introspection
// gives it a 503, releases the requests waiting for it at once, and leaves nothing in flight, so
// the next request with that token asks the IdP again.
func TestLeaderPanicReleasesWaiters(t *testing.T) {
	rig := newCacheRig(t, "panic@test", answerJSON(`{"active":true,"grp":"admin"}`), nil)
	transport := rig.m.idp.client.Transport.(*http.Transport)
	release := make(chan struct{})
	transport.Proxy = func(req *http.Request) (*url.URL, error) {
		<-release
		panic("injected")
	}
	leader := make(chan int, 1)
	go func() { leader <- rig.do("tok").Code }()
	key := tokenKey("tok", nil, nil)
	var p *pending
	waitFor(t, 10*time.Second, "the leader in flight", func() bool {
		rig.m.cache.mu.RLock()
		defer rig.m.cache.mu.RUnlock()
		p = rig.m.cache.inflight[key]
		return p != nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waiter := make(chan int, 1)
	go func() {
		req := httptest.NewRequest(http.MethodGet, "/api", nil).WithContext(ctx)
		req.Header.Set("Authorization", "Bearer tok")
		waiter <- send(rig, req).Code
	}()
	waitFor(t, 10*time.Second, "a waiter", func() bool { return p.waiters.Load() == 1 })
	close(release)
	for _, got := range []struct {
		who string
		ch  chan int
	}{{"leader", leader}, {"waiter", waiter}} {
		select {
		case code := <-got.ch:
			if code != http.StatusServiceUnavailable {
				t.Errorf("%s: status %d, want 503", got.who, code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s was not released", got.who)
		}
	}
	rig.m.cache.mu.RLock()
	left := len(rig.m.cache.inflight)
	rig.m.cache.mu.RUnlock()
	if left != 0 {
		t.Errorf("%d introspections left in flight", left)
	}
	transport.Proxy = nil
	expectStatus(t, rig.do("tok"), http.StatusOK)
	if rig.calls() != 1 {
		t.Errorf("IdP calls = %d, want 1 (asked again after the panic)", rig.calls())
	}
}

// TestCacheBoundsBytes: large forwarded claims count against cache.maxBytes, so the cache holds as
// many of them as the bound allows, the newest, whatever maxEntries says.
func TestCacheBoundsBytes(t *testing.T) {
	blob := strings.Repeat("b", 300<<10)
	rig := newCacheRig(t, "bytes@test", answerJSON(`{"active":true,"grp":"admin","blob":"`+blob+`"}`), func(c *Config) {
		c.ForwardHeaders = map[string]string{"X-Blob": "blob"}
		c.Cache.MaxBytes = 1 << 20
		c.Cache.MaxEntries = 1000
	})
	for i := 0; i < 10; i++ {
		expectStatus(t, rig.do(fmt.Sprint("big-", i)), http.StatusOK)
	}
	c := rig.m.cache
	c.mu.RLock()
	n, bytes := len(c.entries), c.bytes
	c.mu.RUnlock()
	if n != 3 || bytes > 1<<20 {
		t.Errorf("%d entries holding %d bytes; want 3 within %d", n, bytes, 1<<20)
	}
	if cachedEntry(c, tokenKey("big-9", nil, nil)) == nil || cachedEntry(c, tokenKey("big-6", nil, nil)) != nil {
		t.Errorf("the cache did not keep the newest entries")
	}
	seen, _ := rig.up.seen()
	if len(seen.Header.Get("X-Blob")) != len(blob) {
		t.Errorf("the claim was not forwarded whole")
	}
	// An answer larger than the whole bound is served, and not cached.
	huge := newCacheRig(t, "bytes-huge@test", answerJSON(`{"active":true,"blob":"`+blob+`"}`), func(c *Config) {
		c.ForwardHeaders = map[string]string{"X-Blob": "blob"}
		c.Cache.MaxBytes = 100 << 10
	})
	expectStatus(t, huge.do("t"), http.StatusOK)
	if cacheLen(huge.m.cache) != 0 {
		t.Errorf("an entry over cache.maxBytes was cached")
	}
}

// TestCacheDefaultMaxBytes pins the documented default.
func TestCacheDefaultMaxBytes(t *testing.T) {
	s, err := compile(bearerConfig("http://127.0.0.1:1/"))
	if err != nil {
		t.Fatal(err)
	}
	if s.cache.MaxBytes != 32<<20 {
		t.Errorf("default cache.maxBytes = %d, want 32 MiB", s.cache.MaxBytes)
	}
}

// TestRegistryForgetsLeastRecentlyBuilt: the registry remembers at most registryCap middleware
// names beyond those built within registryGrace. The name built longest ago is forgotten first,
// and comes back with a cold cache; names built recently are all kept, so that a reload that
// rebuilds more names than registryCap finds every cache warm.
func TestRegistryForgetsLeastRecentlyBuilt(t *testing.T) {
	idp := newFakeIDP(t, answerJSON(`{"active":true}`))
	build := func(name string) *middleware {
		h, err := New(context.Background(), &upstream{}, bearerConfig(idp.srv.URL), name)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return h.(*middleware)
	}
	// Each name's last build is set back by its position, as if built in turn long ago.
	age := func(name string, by time.Duration) {
		registryMu.Lock()
		registry[name].built = time.Now().Add(-registryGrace - by)
		registryMu.Unlock()
	}
	names := []string{"lru-first@test", "lru-second@test"}
	for i := 0; i < registryCap; i++ {
		names = append(names, fmt.Sprintf("lru-%d@test", i))
	}
	caches := map[string]*verdictCache{}
	for _, name := range names {
		caches[name] = build(name).cache
	}
	registryMu.Lock()
	size := len(registry)
	registryMu.Unlock()
	if size < len(names) {
		t.Fatalf("names built within the grace were forgotten: %d of %d kept", size, len(names))
	}
	// A reload rebuilds every name in use: all keep their caches.
	for _, name := range names {
		if build(name).cache != caches[name] {
			t.Fatalf("%s lost its cache on a rebuild", name)
		}
	}
	for i, name := range names {
		age(name, time.Duration(len(names)-i)*time.Second)
	}
	build("lru-new@test") // over the cap: the oldest, lru-first, goes
	registryMu.Lock()
	_, firstKnown := registry["lru-first@test"]
	_, secondKnown := registry["lru-second@test"]
	registryMu.Unlock()
	if firstKnown || !secondKnown {
		t.Errorf("after one new name: first known %v, second known %v; want only the first forgotten", firstKnown, secondKnown)
	}
	if build("lru-first@test").cache == caches["lru-first@test"] {
		t.Errorf("a forgotten name got its old cache back")
	}
	if build("lru-5@test").cache != caches["lru-5@test"] {
		t.Errorf("a remembered name lost its cache")
	}
}
