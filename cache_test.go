package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// cacheRig is a middleware in front of a fake IdP that counts its calls.
type cacheRig struct {
	idp *fakeIDP
	up  *upstream
	m   *middleware
}

func newCacheRig(t *testing.T, name string, answer func(w http.ResponseWriter, r *http.Request, call int), tune func(*Config)) *cacheRig {
	t.Helper()
	idp := newFakeIDP(t, answer)
	cfg := bearerConfig(idp.srv.URL)
	cfg.ClientConfig.TimeoutSeconds = 5
	cfg.ForwardHeaders = map[string]string{"Group": "grp"}
	if tune != nil {
		tune(cfg)
	}
	up := &upstream{}
	h, err := New(context.Background(), up, cfg, name)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &cacheRig{idp: idp, up: up, m: h.(*middleware)}
}

func (r *cacheRig) do(token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	r.m.ServeHTTP(rec, req)
	return rec
}

func (r *cacheRig) calls() int {
	n, _, _ := r.idp.snapshot()
	return n
}

func expectStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Errorf("status = %d, want %d", rec.Code, want)
	}
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
			v := &verdict{exp: test.exp, nbf: test.nbf, values: []string{"admin"}}
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
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 10, StaleIfErrorSeconds: 600})
	c.store(tokenKey("short", nil, nil), &verdict{exp: now + 5}, now)
	c.store(tokenKey("long", nil, nil), &verdict{exp: now + 3600}, now)
	c.store(tokenKey("none", nil, nil), reject(0, nil, ""), now)
	c.store(tokenKey("gone", nil, nil), &verdict{exp: now}, now)
	checks := []struct {
		key          string
		fresh, stale int64
	}{
		{"short", now + 5, now + 5},
		{"long", now + 30, now + 630},
		{"none", now + 30, now + 630},
	}
	for _, want := range checks {
		e := c.get(tokenKey(want.key, nil, nil))
		if e == nil {
			t.Errorf("%s: not cached", want.key)
			continue
		}
		if e.freshUntil != want.fresh || e.staleUntil != want.stale {
			t.Errorf("%s: fresh/stale until = %d/%d, want %d/%d", want.key, e.freshUntil-now, e.staleUntil-now, want.fresh-now, want.stale-now)
		}
	}
	if c.get(tokenKey("gone", nil, nil)) != nil {
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
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: maxEntries, NegativeTTLSeconds: 60})
	now := time.Now().Unix()
	inactive := reject(http.StatusUnauthorized, challengeInvalid, "token is not active")
	for i := 0; i < total; i++ {
		key := tokenKey("bogus-"+fmt.Sprint(i), nil, nil)
		p, _ := c.join(key)
		c.finish(key, p, inactive, now, true)
		if i%10000 == 0 && c.len() > maxEntries {
			t.Fatalf("after %d tokens: %d entries, over %d", i+1, c.len(), maxEntries)
		}
	}
	if c.len() != maxEntries {
		t.Errorf("entries = %d, want %d", c.len(), maxEntries)
	}
	if c.get(tokenKey("bogus-"+fmt.Sprint(total-1), nil, nil)) == nil {
		t.Errorf("the newest entry was evicted")
	}
	if c.get(tokenKey("bogus-0", nil, nil)) != nil {
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
			v := &verdict{exp: now + 3600, nbf: now - 10, values: []string{"admin"}}
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
			e := rig.m.cache.get(key)
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

func TestCacheConfigErrors(t *testing.T) {
	testCases := []struct {
		desc  string
		cache CacheConfig
		want  string
	}{
		{desc: "negative ttl", cache: CacheConfig{TTLSeconds: -1}, want: "cache.ttlSeconds"},
		{desc: "negative maxEntries", cache: CacheConfig{TTLSeconds: 1, MaxEntries: -5}, want: "cache.maxEntries"},
		{desc: "huge negative ttl", cache: CacheConfig{NegativeTTLSeconds: 1 << 30}, want: "cache.negativeTtlSeconds"},
		{desc: "negative stale", cache: CacheConfig{StaleIfErrorSeconds: -3}, want: "cache.staleIfErrorSeconds"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			cfg := bearerConfig("http://127.0.0.1:1/")
			cfg.Cache = test.cache
			_, err := New(context.Background(), &upstream{}, cfg, "cachecfg@test")
			if err == nil || !strings.Contains(err.Error(), test.want) {
				t.Errorf("error = %v, want one naming %s", err, test.want)
			}
		})
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
}
