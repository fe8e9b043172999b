package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// Tests that pin behaviours mutation testing found unpinned (docs/mutation.md): each one would let
// a plausible bug through if it were missing.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCacheKeyWithTemplatedHeaders: with templated clientConfig.headers, the IdP's answer may depend
// on the request, so the cache key holds the token and every rendered value. Another token with the
// same rendered values, and the same token with other rendered values, each get their own answer.
func TestCacheKeyWithTemplatedHeaders(t *testing.T) {
	rig := newCacheRig(t, "templated-key@test", func(w http.ResponseWriter, r *http.Request, call int) {
		_ = r.ParseForm()
		if r.PostForm.Get("token") == "alice" && r.Header.Get("X-Path") == "/a" {
			answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
			return
		}
		answerJSON(`{"active":false}`)(w, r, call)
	}, func(c *Config) {
		c.ClientConfig.Headers = map[string]string{"X-Path": "{{ .Request.URL.Path }}", "X-Static": "s"}
	})
	get := func(token, path string) int {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return send(rig, req).Code
	}
	for _, step := range []struct {
		token, path string
		want, calls int
	}{
		{"alice", "/a", http.StatusOK, 1},
		{"alice", "/a", http.StatusOK, 1}, // cached
		{"mallory", "/a", http.StatusUnauthorized, 2},
		{"alice", "/b", http.StatusUnauthorized, 3},
		{"alice", "/a", http.StatusOK, 3},
	} {
		if got := get(step.token, step.path); got != step.want {
			t.Errorf("%s on %s: status %d, want %d", step.token, step.path, got, step.want)
		}
		if rig.calls() != step.calls {
			t.Errorf("%s on %s: IdP calls %d, want %d", step.token, step.path, rig.calls(), step.calls)
		}
	}
	// The values are separated, so that moving a byte from the token to a value, or from one value
	// to the next, makes another key.
	two := []headerTemplate{{name: "X-A"}, {name: "X-B"}}
	rendered := func(a, b string) http.Header { return http.Header{"X-A": {a}, "X-B": {b}} }
	keys := map[cacheKey]string{}
	for _, k := range []struct {
		desc  string
		token string
		h     http.Header
	}{
		{"ab|c|", "ab", rendered("c", "")},
		{"a|bc|", "a", rendered("bc", "")},
		{"a|b|c", "a", rendered("b", "c")},
		{"a|bc|.", "a", rendered("", "bc")},
		{"a", "a", rendered("", "")},
	} {
		key := tokenKey(k.token, k.h, two)
		if other, dup := keys[key]; dup {
			t.Errorf("%s and %s have one cache key", k.desc, other)
		}
		keys[key] = k.desc
	}
	if tokenKey("a", rendered("", ""), two) == tokenKey("a", nil, nil) {
		t.Errorf("a templated key equals the plain digest of the token")
	}
}

// TestTLSVerificationStaysOn: configuring a CA, or a client certificate, never turns off the
// verification of the endpoint's certificate.
func TestTLSVerificationStaysOn(t *testing.T) {
	srv := httptest.NewTLSServer(activeHandler())
	t.Cleanup(func() { srv.Close() })
	other := newTestCA(t, "another-ca")
	client := newTestCA(t, "client")
	for _, test := range []struct {
		desc string
		tls  TLSConfig
	}{
		{desc: "a CA that did not sign the endpoint's certificate", tls: TLSConfig{CA: other.certPEM}},
		{desc: "a client certificate, and the system roots", tls: TLSConfig{Cert: client.certPEM, Key: client.keyPEM}},
		{desc: "a CA and a client certificate", tls: TLSConfig{CA: other.certPEM, Cert: client.certPEM, Key: client.keyPEM}},
	} {
		t.Run(test.desc, func(t *testing.T) {
			cfg := bearerConfig(srv.URL)
			cfg.ClientConfig.TLS = test.tls
			cfg.ClientConfig.MaxRetries = 0
			if rec, _ := serveOne(t, cfg, "t"); rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503: the endpoint's certificate was not verified", rec.Code)
			}
		})
	}
}

// TestStale403StaysForbidden: a cached 403 served stale while the IdP fails is still a 403, on the
// general path and on the fast path, which only ever lets through an allowing verdict.
func TestStale403StaysForbidden(t *testing.T) {
	rig := newCacheRig(t, "stale-403@test", answerStatus(http.StatusBadGateway), func(c *Config) {
		c.Cache.StaleIfErrorSeconds = 600
		c.ClientConfig.MaxRetries = 0
	})
	now := time.Now().Unix()
	key := tokenKey("tok", nil, nil)
	forbidden := &verdict{status: http.StatusForbidden, challenge: challengeScope, reason: "claims expression is false",
		exp: now + 3600, nbf: now - 10, names: []string{"Group"}, values: []string{"user"}}
	rig.m.cache.mu.Lock()
	rig.m.cache.entries[key] = &cacheEntry{v: forbidden, freshUntil: now - 1, staleUntil: now + 600}
	rig.m.cache.mu.Unlock()
	for i := 0; i < 4; i++ {
		expectStatus(t, rig.do("tok"), http.StatusForbidden)
	}
	if e := cachedEntry(rig.m.cache, key); e == nil || e.passUntil != 0 {
		t.Errorf("a stale 403 entry has a pass window: %+v", e)
	}
}

// TestTimeClaimEdges pins how exp and nbf are read (RFC 7519 section 2, NumericDate).
func TestTimeClaimEdges(t *testing.T) {
	for _, test := range []struct {
		desc   string
		answer string
		want   int
	}{
		{desc: "nbf that is not a number", answer: `{"active":true,"nbf":"soon"}`, want: http.StatusServiceUnavailable},
		{desc: "nbf of 1e400, beyond float64", answer: `{"active":true,"nbf":1e400}`, want: http.StatusServiceUnavailable},
		{desc: "exp of 1e400, beyond float64", answer: `{"active":true,"exp":1e400}`, want: http.StatusServiceUnavailable},
		{desc: "nbf of exactly 2^63 is in the future", answer: `{"active":true,"nbf":9223372036854775808}`, want: http.StatusUnauthorized},
		{desc: "nbf just under 2^63 is in the future", answer: `{"active":true,"nbf":9223372036854774784}`, want: http.StatusUnauthorized},
		{desc: "exp of exactly 2^63 is in the future", answer: `{"active":true,"exp":9223372036854775808}`, want: http.StatusOK},
		{desc: "exp of -2^63 is in the past", answer: `{"active":true,"exp":-9223372036854775808}`, want: http.StatusUnauthorized},
		{desc: "exp beyond -2^63 is in the past", answer: `{"active":true,"exp":-1e19}`, want: http.StatusUnauthorized},
		{desc: "nbf beyond -2^63 is in the past", answer: `{"active":true,"nbf":-1e19}`, want: http.StatusOK},
		{desc: "null nbf is absent", answer: `{"active":true,"nbf":null}`, want: http.StatusOK},
		{desc: "exp as a string", answer: `{"active":true,"exp":"4102444800"}`, want: http.StatusServiceUnavailable},
	} {
		t.Run(test.desc, func(t *testing.T) {
			rig := newCacheRig(t, "time-"+test.desc+"@test", answerJSON(test.answer), nil)
			for i := 0; i < 2; i++ {
				expectStatus(t, rig.do("tok"), test.want)
			}
		})
	}
	if got, ok := timeClaim(jsonNumber("9223372036854775808")); !ok || got != math.MaxInt64 {
		t.Errorf("nbf 2^63 = %d, %v; want MaxInt64", got, ok)
	}
	if got, ok := timeClaim(jsonNumber("-9223372036854775808")); !ok || got != math.MinInt64 {
		t.Errorf("exp -2^63 = %d, %v; want MinInt64", got, ok)
	}
}

// TestExpiresDuringTheSecondOfExp: a token is expired from the second of its exp on (RFC 7519
// section 4.1.4: "on or after"), on the general path and on the fast path, and valid from the
// second of its nbf on.
func TestExpiresDuringTheSecondOfExp(t *testing.T) {
	rig := newCacheRig(t, "exp-second@test", answerJSON(`{"active":true}`), nil)
	key := tokenKey("tok", nil, nil)
	plant := func(exp, nbf int64) {
		v := &verdict{exp: exp, nbf: nbf, names: []string{"Group"}, values: []string{"admin"}}
		rig.m.cache.mu.Lock()
		rig.m.cache.entries[key] = &cacheEntry{v: v, freshUntil: exp + 100, passFrom: nbf, passUntil: exp}
		rig.m.cache.mu.Unlock()
	}
	// The checks only tell when the clock did not move to the next second meanwhile: retry then.
	within := func(what string, check func(now int64) bool) {
		t.Helper()
		for attempt := 0; attempt < 20; attempt++ {
			now := time.Now().Unix()
			ok := check(now)
			if time.Now().Unix() == now {
				if !ok {
					t.Errorf("at the second %d: %s failed", now, what)
				}
				return
			}
		}
		t.Fatal("the clock moved on during every attempt")
	}
	within("the fast path refusing a token in the second of its exp", func(now int64) bool {
		plant(now, now-10)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer tok")
		return fastHit(rig.m.fast, req) != fastPassed
	})
	within("the general path refusing a token in the second of its exp", func(now int64) bool {
		plant(now, now-10)
		return rig.do("tok").Code == http.StatusUnauthorized
	})
	within("the fast path taking a token in the second of its nbf", func(now int64) bool {
		plant(now+100, now)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer tok")
		return fastHit(rig.m.fast, req) == fastPassed
	})
	// An entry without a pass window leaves the request to decide, which judges the same edges.
	general := func(exp, nbf int64) {
		plant(exp, nbf)
		rig.m.cache.mu.Lock()
		rig.m.cache.entries[key].passUntil = 0
		rig.m.cache.mu.Unlock()
	}
	within("the general path taking a token in the second of its nbf", func(now int64) bool {
		general(now+100, now)
		return rig.do("tok").Code == http.StatusOK
	})
	within("the general path refusing a token in the second before its nbf", func(now int64) bool {
		general(now+100, now+1)
		return rig.do("tok").Code == http.StatusUnauthorized
	})
	within("the general path refusing a token in the second of its exp, without a pass window", func(now int64) bool {
		general(now, now-10)
		return rig.do("tok").Code == http.StatusUnauthorized
	})
	within("checkTime at the edges", func(now int64) bool {
		// Each status gets a variable of its own: under Yaegi v0.16.1, call().field == x && ...
		// panics or gives false (docs/development.md).
		atExp := checkTime(&verdict{exp: now, nbf: math.MinInt64}, now).status
		atNbf := checkTime(&verdict{exp: now + 1, nbf: now}, now).status
		beforeNbf := checkTime(&verdict{exp: now + 1, nbf: now + 1}, now).status
		return atExp == http.StatusUnauthorized && atNbf == 0 && beforeNbf == http.StatusUnauthorized
	})
	if rig.calls() != 0 {
		t.Errorf("IdP calls = %d, want 0", rig.calls())
	}
}

// TestCacheRing pins the eviction ring: a replaced entry keeps its place, the oldest goes first,
// and one slot works.
func TestCacheRing(t *testing.T) {
	now := time.Now().Unix()
	allow := &verdict{exp: math.MaxInt64, nbf: math.MinInt64}
	key := func(name string) cacheKey { return tokenKey(name, nil, nil) }
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 3, MaxBytes: defaultCacheMaxBytes})
	for _, name := range []string{"a", "b", "c"} {
		storeVerdict(c, key(name), allow, now)
	}
	for i := 0; i < 5; i++ {
		storeVerdict(c, key("c"), allow, now) // replaced, again and again
	}
	storeVerdict(c, key("d"), allow, now) // evicts a, the oldest
	if cachedEntry(c, key("a")) != nil || cachedEntry(c, key("b")) == nil || cachedEntry(c, key("c")) == nil {
		t.Errorf("after d: a %v, b %v, c %v; want only a evicted", cachedEntry(c, key("a")) != nil, cachedEntry(c, key("b")) != nil, cachedEntry(c, key("c")) != nil)
	}
	for i := 0; i < 100; i++ {
		storeVerdict(c, key(fmt.Sprint("n", i)), allow, now)
		storeVerdict(c, key(fmt.Sprint("n", i)), allow, now)
		if n := cacheLen(c); n > 3 {
			t.Fatalf("after %d insertions: %d entries, over maxEntries 3", i, n)
		}
	}
	if cachedEntry(c, key("n99")) == nil || cachedEntry(c, key("n98")) == nil || cachedEntry(c, key("n97")) == nil {
		t.Errorf("the newest entries were not kept")
	}
	one := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 1, MaxBytes: defaultCacheMaxBytes})
	for i := 0; i < 5; i++ {
		storeVerdict(one, key(fmt.Sprint("s", i)), allow, now)
	}
	if cacheLen(one) != 1 || cachedEntry(one, key("s4")) == nil {
		t.Errorf("maxEntries 1: %d entries, newest kept %v", cacheLen(one), cachedEntry(one, key("s4")) != nil)
	}
	// A removed entry's slot stays until eviction reaches it; the bound still holds.
	storeVerdict(c, key("gone"), reject(http.StatusServiceUnavailable, nil, ""), now)
	if cachedEntry(c, key("gone")) != nil {
		t.Errorf("a failure was cached")
	}
}

// TestCacheConfiguredBounds: the configured maxEntries is the bound, and IdP failures are never
// cached, with negative caching on too.
func TestCacheConfiguredBounds(t *testing.T) {
	rig := newCacheRig(t, "max-5@test", answerJSON(`{"active":true}`), func(c *Config) { c.Cache.MaxEntries = 5 })
	for i := 0; i < 12; i++ {
		expectStatus(t, rig.do(fmt.Sprint("t", i)), http.StatusOK)
	}
	if n := cacheLen(rig.m.cache); n != 5 {
		t.Errorf("%d entries, want maxEntries 5", n)
	}
	failing := newCacheRig(t, "neg-fail@test", answerStatus(http.StatusBadGateway), func(c *Config) {
		c.Cache.NegativeTTLSeconds = 60
		c.ClientConfig.MaxRetries = 0
	})
	expectStatus(t, failing.do("t"), http.StatusServiceUnavailable)
	expectStatus(t, failing.do("t"), http.StatusServiceUnavailable)
	if failing.calls() != 2 {
		t.Errorf("negativeTtlSeconds cached a failure: IdP calls %d, want 2", failing.calls())
	}
}

// TestSchemeOfTheSameLength: another scheme of the configured scheme's length is another scheme,
// and a header shorter than the scheme is malformed, on both paths.
func TestSchemeOfTheSameLength(t *testing.T) {
	rig := newCacheRig(t, "scheme-length@test", answerJSON(`{"active":true}`), nil)
	expectStatus(t, rig.do("x"), http.StatusOK) // caches "x"
	for _, value := range []string{"Digest x", "Bearex x", "Bear", "B", "Bearer"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", value)
		if fastHit(rig.m.fast, req) == fastPassed {
			t.Errorf("%q: the fast path took it", value)
		}
		req = httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", value)
		expectStatus(t, send(rig, req), http.StatusUnauthorized)
	}
	if rig.calls() != 1 {
		t.Errorf("IdP calls = %d, want 1", rig.calls())
	}
}

// TestEndlessAnswerIsCut: the IdP's body is read up to its cap and no further, whatever the
// status: an endless body costs one capped read, not the whole timeout.
func TestEndlessAnswerIsCut(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusBadRequest} {
		status := status
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				chunk := []byte(`{"active":true,"pad":"` + strings.Repeat("x", 32<<10))
				for r.Context().Err() == nil {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
			t.Cleanup(func() { srv.Close() })
			cfg := bearerConfig(srv.URL)
			cfg.ClientConfig.TimeoutSeconds = 10
			cfg.ClientConfig.MaxRetries = 0
			start := time.Now()
			rec, _ := serveOne(t, cfg, "t")
			expectStatus(t, rec, http.StatusServiceUnavailable)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("an endless body took %v, near the 10 s timeout: it was not cut", took)
			}
		})
	}
}

// jsonNumber is a JSON number as decodeAnswer hands it over.
func jsonNumber(s string) any {
	return json.Number(s)
}

// TestCacheOffMeansOff: with ttlSeconds 0 nothing is cached, not even inactive answers with
// negativeTtlSeconds set.
func TestCacheOffMeansOff(t *testing.T) {
	rig := newCacheRig(t, "off-neg@test", answerJSON(`{"active":false}`), func(c *Config) {
		c.Cache.TTLSeconds = 0
		c.Cache.NegativeTTLSeconds = 60
	})
	expectStatus(t, rig.do("t"), http.StatusUnauthorized)
	expectStatus(t, rig.do("t"), http.StatusUnauthorized)
	if rig.calls() != 2 {
		t.Errorf("IdP calls = %d, want 2: ttlSeconds 0 turns the cache off", rig.calls())
	}
}

// TestCacheEntrySizes pins what an entry is accounted for, and that an entry of exactly the whole
// bound fits, with the bound then full.
func TestCacheEntrySizes(t *testing.T) {
	now := time.Now().Unix()
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 10, MaxBytes: 3 * entryOverhead})
	v := &verdict{exp: math.MaxInt64, nbf: math.MinInt64, names: []string{"A", "B"}, values: []string{"12345", "678"}, user: url.User("alice")}
	if e := newEntry(c, v, now); e == nil || e.size != entryOverhead+5+3+5 {
		t.Errorf("entry size %v, want %d (overhead, values, username)", e, entryOverhead+13)
	}
	bare := &verdict{exp: math.MaxInt64, nbf: math.MinInt64}
	for _, name := range []string{"a", "b", "c"} {
		storeVerdict(c, tokenKey(name, nil, nil), bare, now)
	}
	if cacheLen(c) != 3 || c.bytes != 3*entryOverhead {
		t.Errorf("three entries that fill maxBytes exactly: %d entries, %d bytes", cacheLen(c), c.bytes)
	}
	exact := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 10, MaxBytes: entryOverhead})
	storeVerdict(exact, tokenKey("x", nil, nil), bare, now)
	if cacheLen(exact) != 1 {
		t.Errorf("an entry of exactly maxBytes was not cached")
	}
}

// TestCacheEvictionPassesRemovedSlots: eviction reaching the slot of a removed entry frees it
// without touching anything else, and a key inserted again is judged by its new slot.
func TestCacheEvictionPassesRemovedSlots(t *testing.T) {
	now := time.Now().Unix()
	allow := &verdict{exp: math.MaxInt64, nbf: math.MinInt64}
	inactive := reject(http.StatusUnauthorized, challengeInvalid, "token is not active")
	key := func(name string) cacheKey { return tokenKey(name, nil, nil) }
	c := newVerdictCache(CacheConfig{TTLSeconds: 30, MaxEntries: 3, MaxBytes: defaultCacheMaxBytes})
	storeVerdict(c, key("a"), allow, now)    // slot 0
	storeVerdict(c, key("a"), inactive, now) // removed: slot 0 stays in the ring
	storeVerdict(c, key("b"), allow, now)    // slot 1
	storeVerdict(c, key("a"), allow, now)    // slot 2: a again
	storeVerdict(c, key("c"), allow, now)    // evicts slot 0, whose entry is gone
	for _, name := range []string{"a", "b", "c"} {
		if cachedEntry(c, key(name)) == nil {
			t.Errorf("%s was evicted; only the removed entry's old slot was due", name)
		}
	}
	storeVerdict(c, key("d"), allow, now) // evicts b, now the oldest
	if cachedEntry(c, key("b")) != nil || cachedEntry(c, key("a")) == nil {
		t.Errorf("after d: b kept %v, a kept %v; want b evicted", cachedEntry(c, key("b")) != nil, cachedEntry(c, key("a")) != nil)
	}
}

// TestFileProblemsAreLogged: a client secret file or TLS file that stops holding valid content
// keeps the last good one, and the ERROR line names the option; nothing is logged while it is fine.
func TestFileProblemsAreLogged(t *testing.T) {
	t.Run("clientSecretFile", func(t *testing.T) {
		idp := activeIDP(t)
		file := writeTemp(t, t.TempDir(), "secret", "good-secret\n")
		cfg := bearerConfig(idp.srv.URL)
		cfg.ClientConfig.ClientID = "gw"
		cfg.ClientConfig.ClientSecretFile = file
		cfg.Cache.TTLSeconds = 0
		h, err := New(context.Background(), &upstream{}, cfg, "secret-problem@test")
		if err != nil {
			t.Fatal(err)
		}
		m := h.(*middleware)
		logs := captureLogs(m)
		call := func() {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer t")
			expectStatus(t, send(m, req), http.StatusOK)
		}
		checkNow(m.idp.auth.secret.file)
		call()
		if strings.Contains(logs(), "clientSecretFile") {
			t.Errorf("a good file was logged as a problem:\n%s", logs())
		}
		writeByRename(t, file, "two\nlines\n")
		checkNow(m.idp.auth.secret.file)
		call()
		checkNow(m.idp.auth.secret.file) // the confirming read
		call()
		if !strings.Contains(logs(), "error: clientConfig.clientSecretFile: the file has more than one line") {
			t.Errorf("the broken file was not logged:\n%s", logs())
		}
	})
	t.Run("tls.ca", func(t *testing.T) {
		srv := httptest.NewTLSServer(activeHandler())
		t.Cleanup(func() { srv.Close() })
		caFile := writeTemp(t, t.TempDir(), "ca.pem", pemOf("CERTIFICATE", srv.Certificate().Raw))
		cfg := bearerConfig(srv.URL)
		cfg.ClientConfig.TLS = TLSConfig{CA: caFile}
		cfg.Cache.TTLSeconds = 0
		h, err := New(context.Background(), &upstream{}, cfg, "tls-problem@test")
		if err != nil {
			t.Fatal(err)
		}
		m := h.(*middleware)
		logs := captureLogs(m)
		call := func() {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer t")
			expectStatus(t, send(m, req), http.StatusOK)
		}
		checkNow(m.idp.tls.ca.file)
		call()
		if strings.Contains(logs(), "tls") {
			t.Errorf("a good CA file was logged as a problem:\n%s", logs())
		}
		writeByRename(t, caFile, "no certificate here\n")
		checkNow(m.idp.tls.ca.file)
		call()
		checkNow(m.idp.tls.ca.file) // the confirming read; the last good CA stays
		call()
		if !strings.Contains(logs(), "error: clientConfig.tls.ca: no PEM certificate found") {
			t.Errorf("the broken CA file was not logged:\n%s", logs())
		}
		os.Remove(caFile)
		checkNow(m.idp.tls.ca.file)
		call()
		if !strings.Contains(logs(), "error: clientConfig.tls.ca: no such file") {
			t.Errorf("the vanished CA file was not logged:\n%s", logs())
		}
	})
}

// TestFileProblemNoticedByAnotherHandler: a problem met outside an introspection (a relayed
// revocation re-reads the TLS files too) is logged by the next introspection, through a handler of
// a second New with the same configuration, and only once: askIdP takes file problems only when
// their notice is up (noteProblem, failTLS).
func TestFileProblemNoticedByAnotherHandler(t *testing.T) {
	serverCA := newTestCA(t, "server-ca")
	idp := newPeerCertIDP(t, serverCA)
	caFile := writeTemp(t, t.TempDir(), "ca.pem", serverCA.certPEM)
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.ClientConfig.TLS = TLSConfig{CA: caFile}
	cfg.Cache.TTLSeconds = 0
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
	relaying, _ := replica(t, "noticed@files", cfg)
	reloaded, _ := replica(t, "noticed@files", cfg) // a second New with the same configuration
	m := inner(reloaded)
	logs := captureLogs(m)
	const line = "error: clientConfig.tls.ca: no PEM certificate found"
	expectStatus(t, send(reloaded, bearerRequest("tok-before")), http.StatusOK)

	writeByRename(t, caFile, "no certificate here\n")
	for round := 0; round < 2; round++ { // the first read sees the change, the second takes it
		checkNow(m.idp.tls.ca.file)
		expectStatus(t, revokeThrough(relaying, "tok-revoked", ""), http.StatusOK)
	}
	if strings.Contains(logs(), "tls") {
		t.Fatalf("logged before any introspection took the problem:\n%s", logs())
	}
	for i, token := range []string{"tok-after", "tok-later"} { // the last good CA stays in use
		expectStatus(t, send(reloaded, bearerRequest(token)), http.StatusOK)
		if n := strings.Count(logs(), line); n != 1 {
			t.Errorf("after introspection %d the problem was logged %d times, want once:\n%s", i+1, n, logs())
		}
	}
}

// TestReadLimitedAtTheLimit: a file of exactly the limit is read whole; one byte more is refused.
func TestReadLimitedAtTheLimit(t *testing.T) {
	dir := t.TempDir()
	exact := writeTemp(t, dir, "exact", strings.Repeat("x", 64))
	content, err := readLimited(exact, 64)
	if err != nil || len(content) != 64 {
		t.Errorf("a file of exactly the limit: %d bytes, %v", len(content), err)
	}
	over := writeTemp(t, dir, "over", strings.Repeat("x", 65))
	if _, err := readLimited(over, 64); err == nil || err.Error() != "larger than 64 bytes" {
		t.Errorf("a file over the limit: %v", err)
	}
	if _, err := readLimited(dir, 64); err == nil || err.Error() != "not a regular file" {
		t.Errorf("a directory: %v", err)
	}
}

// TestWatchedFileOneReaderAtATime: while one request reads the file, the others use the accepted
// content instead of reading too.
func TestWatchedFileOneReaderAtATime(t *testing.T) {
	path := writeTemp(t, t.TempDir(), "secret", "first\n")
	w, err := openWatched(path, maxSecretFileBytes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeByRename(t, path, "second\n")
	checkNow(w)
	w.mu.Lock()
	w.reading = true // another request is reading
	w.mu.Unlock()
	if got := pollFile(w, time.Now()); got != nil {
		t.Errorf("a second reader read the file: %q", got)
	}
	w.mu.Lock()
	w.reading = false
	w.mu.Unlock()
	if got := pollFile(w, time.Now()); got != nil {
		t.Errorf("a change was taken on its first read: %q", got)
	}
	checkNow(w)
	if got := string(pollFile(w, time.Now())); got != "second\n" {
		t.Errorf("once the reader is done, after the confirming read: %q", got)
	}
}

// TestRetriesBackOffFromTheFirstStep: retries wait 50 ms doubled each time (with jitter), starting
// from the first step, so that a 1 s timeout fits at least five attempts against a failing IdP.
// Starting two steps later would fit at most four.
func TestRetriesBackOffFromTheFirstStep(t *testing.T) {
	idp := newFakeIDP(t, answerStatus(http.StatusServiceUnavailable))
	cfg := bearerConfig(idp.srv.URL)
	cfg.ClientConfig.MaxRetries = 10
	cfg.ClientConfig.TimeoutSeconds = 1
	rec, _ := serveOne(t, cfg, "t")
	expectStatus(t, rec, http.StatusServiceUnavailable)
	if calls, _, _ := idp.snapshot(); calls < 5 || calls > 7 {
		t.Errorf("%d attempts in 1 s, want 5 to 7", calls)
	}
}

// TestIdPConnectionsAreReused: sequential introspections share one connection to the IdP.
func TestIdPConnectionsAreReused(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(activeHandler())
	srv.Config.ConnState = func(c net.Conn, state http.ConnState) {
		if state == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(func() { srv.Close() })
	cfg := bearerConfig(srv.URL)
	cfg.Cache.TTLSeconds = 0
	h, err := New(context.Background(), &upstream{}, cfg, "reuse@test")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer t")
		expectStatus(t, send(h.(*middleware), req), http.StatusOK)
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Errorf("%d connections for 5 sequential calls, want 1", conns)
	}
	// Idle connections are closed after 30 s, as documented, rather than kept for good.
	if idle := h.(*middleware).idp.client.Transport.(*http.Transport).IdleConnTimeout; idle != 30*time.Second {
		t.Errorf("IdleConnTimeout = %v, want 30 s", idle)
	}
}

// TestNegativeCacheHoldsOnlyInactiveAnswers: negativeTtlSeconds caches inactive answers, never an
// answer judged unusable (a malformed exp).
func TestNegativeCacheHoldsOnlyInactiveAnswers(t *testing.T) {
	rig := newCacheRig(t, "neg-malformed@test", answerJSON(`{"active":true,"exp":"soon"}`), func(c *Config) {
		c.Cache.NegativeTTLSeconds = 60
	})
	expectStatus(t, rig.do("t"), http.StatusServiceUnavailable)
	expectStatus(t, rig.do("t"), http.StatusServiceUnavailable)
	if rig.calls() != 2 {
		t.Errorf("IdP calls = %d, want 2: a malformed answer was cached", rig.calls())
	}
}

// TestFilesAreCheckedAtMostEvery5s: a changed file is not read again before fileRecheck has passed,
// so that the request path does not pay for a read on every call.
func TestFilesAreCheckedAtMostEvery5s(t *testing.T) {
	path := writeTemp(t, t.TempDir(), "secret", "first\n")
	start := time.Now()
	w, err := openWatched(path, maxSecretFileBytes, start)
	if err != nil {
		t.Fatal(err)
	}
	writeByRename(t, path, "second\n")
	if got := pollFile(w, start.Add(fileRecheck-time.Millisecond)); got != nil {
		t.Errorf("read again before fileRecheck: %q", got)
	}
	if got := pollFile(w, start.Add(fileRecheck)); got != nil {
		t.Errorf("a change was taken on its first read: %q", got)
	}
	if got := pollFile(w, start.Add(fileRecheck+fileConfirm-time.Millisecond)); got != nil {
		t.Errorf("confirmed before fileConfirm: %q", got)
	}
	if got := string(pollFile(w, start.Add(fileRecheck+fileConfirm))); got != "second\n" {
		t.Errorf("not confirmed at fileConfirm: %q", got)
	}
	if fileRecheck != 5*time.Second {
		t.Errorf("fileRecheck = %v, the documented 5 s", fileRecheck)
	}
}

// TestPeerClosingIsLoggedByKind: a peer that closes the connection without answering is named so.
func TestPeerClosingIsLoggedByKind(t *testing.T) {
	cfg := bearerConfig(rawPeerURL(t, ""))
	cfg.ClientConfig.MaxRetries = 0
	h, err := New(context.Background(), &upstream{}, cfg, "peer-closes@test")
	if err != nil {
		t.Fatal(err)
	}
	logs := captureLogs(h.(*middleware))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer t")
	expectStatus(t, send(h.(*middleware), req), http.StatusServiceUnavailable)
	if !strings.Contains(logs(), "request failed: connection closed by the endpoint") {
		t.Errorf("the log does not name the kind:\n%s", logs())
	}
}

// TestRetryAfterParsing pins RFC 9110 section 10.2.3 delay-seconds as the client reads them.
func TestRetryAfterParsing(t *testing.T) {
	for _, test := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"1", time.Second}, {" 2 ", 2 * time.Second}, {"3600", time.Hour},
		{"3601", 0}, {"-1", 0}, {"1.5", 0}, {"Wed, 21 Oct 2015 07:28:00 GMT", 0}, {"soon", 0},
	} {
		if got := retryAfter(test.in); got != test.want {
			t.Errorf("retryAfter(%q) = %v, want %v", test.in, got, test.want)
		}
	}
}

// TestAnswerOfExactly1MiB: the cap is 1 MiB: an answer of exactly that size is read whole.
func TestAnswerOfExactly1MiB(t *testing.T) {
	head := `{"active":true,"grp":"admin","pad":"`
	body := head + strings.Repeat("x", maxResponseBytes-len(head)-2) + `"}`
	if len(body) != 1<<20 {
		t.Fatalf("body of %d bytes", len(body))
	}
	rig := newCacheRig(t, "one-mib@test", answerJSON(body), nil)
	expectStatus(t, rig.do("t"), http.StatusOK)
	over := newCacheRig(t, "one-mib-plus@test", answerJSON(body+" "), nil)
	expectStatus(t, over.do("t"), http.StatusServiceUnavailable)
}

// TestCacheWindowsEndOnTheirSecond: an entry is fresh before its freshUntil second, and served
// stale before its staleUntil second, not during it.
func TestCacheWindowsEndOnTheirSecond(t *testing.T) {
	rig := newCacheRig(t, "windows@test", answerStatus(http.StatusBadGateway), func(c *Config) {
		c.Cache.StaleIfErrorSeconds = 600
		c.ClientConfig.MaxRetries = 0
	})
	key := tokenKey("tok", nil, nil)
	plant := func(fresh, stale int64) {
		v := &verdict{exp: math.MaxInt64, nbf: math.MinInt64, names: []string{"Group"}, values: []string{"admin"}}
		rig.m.cache.mu.Lock()
		rig.m.cache.entries[key] = &cacheEntry{v: v, freshUntil: fresh, staleUntil: stale}
		rig.m.cache.mu.Unlock()
	}
	for _, test := range []struct {
		desc  string
		plant func(now int64)
		want  int
		calls int
	}{
		{desc: "fresh until the second before freshUntil", plant: func(now int64) { plant(now+1, now+1) }, want: http.StatusOK, calls: 0},
		{desc: "not fresh in the second of freshUntil", plant: func(now int64) { plant(now, now) }, want: http.StatusServiceUnavailable, calls: 1},
		{desc: "stale in the second before staleUntil", plant: func(now int64) { plant(now, now+1) }, want: http.StatusOK, calls: 1},
	} {
		t.Run(test.desc, func(t *testing.T) {
			for attempt := 0; ; attempt++ {
				before := rig.calls()
				now := time.Now().Unix()
				test.plant(now)
				code := rig.do("tok").Code
				if time.Now().Unix() != now {
					if attempt > 20 {
						t.Fatal("the clock moved on during every attempt")
					}
					continue
				}
				if code != test.want || rig.calls()-before != test.calls {
					t.Errorf("status %d with %d IdP calls, want %d with %d", code, rig.calls()-before, test.want, test.calls)
				}
				return
			}
		})
	}
}

// TestRegistryCapIsOfNamesBeyondIt: the registry forgets a name only once it holds more than
// registryCap names.
func TestRegistryCapIsOfNamesBeyondIt(t *testing.T) {
	registryMu.Lock()
	saved := registry
	registry = map[string]*shared{}
	registryMu.Unlock()
	t.Cleanup(func() {
		registryMu.Lock()
		registry = saved
		registryMu.Unlock()
	})
	cfg := bearerConfig("http://127.0.0.1:1/")
	for i := 0; i < registryCap; i++ {
		if _, err := New(context.Background(), &upstream{}, cfg, fmt.Sprintf("cap-%d@test", i)); err != nil {
			t.Fatal(err)
		}
	}
	registryMu.Lock()
	for _, sh := range registry {
		sh.built = time.Now().Add(-2 * registryGrace)
	}
	size := len(registry)
	registryMu.Unlock()
	if size != registryCap {
		t.Fatalf("%d names after %d builds", size, registryCap)
	}
	registryMu.Lock()
	delete(registry, "cap-0@test")
	registryMu.Unlock()
	if _, err := New(context.Background(), &upstream{}, cfg, "cap-new@test"); err != nil {
		t.Fatal(err)
	}
	registryMu.Lock()
	size = len(registry)
	registryMu.Unlock()
	if size != registryCap {
		t.Errorf("%d names, want %d: a name was forgotten at the cap, not beyond it", size, registryCap)
	}
}

// TestCheckTimeSaysWhy: a token refused for its time says which bound it missed, in the debug log
// an operator reads, from the second of exp on and before nbf.
func TestCheckTimeSaysWhy(t *testing.T) {
	v := &verdict{nbf: 100, exp: 200}
	for _, test := range []struct {
		now    int64
		reason string
	}{{99, "token not yet valid"}, {100, ""}, {199, ""}, {200, "token expired"}, {250, "token expired"}} {
		got := checkTime(v, test.now)
		if test.reason == "" {
			if got != v {
				t.Errorf("at %d: refused (%s), want the verdict itself", test.now, got.reason)
			}
			continue
		}
		if got.status != http.StatusUnauthorized || got.reason != test.reason {
			t.Errorf("at %d: %d %q, want 401 %q", test.now, got.status, got.reason, test.reason)
		}
	}
}

// TestTimeBeforeClaims: a token outside its exp or nbf is refused as invalid (401), even when the
// claims expression is false too, and a token within them that the expression refuses gets 403,
// answered and cached alike: decide applies checkTime to a refusal only when its time is out, so
// the order of the two checks must hold on every path. Requests go through the rig's handlers in
// turn (two routers and a reload).
func TestTimeBeforeClaims(t *testing.T) {
	far := time.Now().Add(time.Hour).Unix()
	for _, test := range []struct {
		answer, challenge string
		want, calls       int // calls: 3 when the answer may not be cached (its exp has passed)
	}{
		{`{"active":true,"grp":"user","exp":1000}`, "invalid_token", http.StatusUnauthorized, 3},
		{fmt.Sprintf(`{"active":true,"grp":"user","exp":%d,"nbf":%d}`, far+60, far), "invalid_token", http.StatusUnauthorized, 1},
		{fmt.Sprintf(`{"active":true,"grp":"user","exp":%d}`, far), "insufficient_scope", http.StatusForbidden, 1},
	} {
		rig := newCacheRig(t, "time-claims@test", answerJSON(test.answer), func(cfg *Config) {
			cfg.Claims = "Equals(`grp`, `admin`)"
		})
		for i := 0; i < 3; i++ {
			rec := rig.do("tok")
			if rec.Code != test.want || !strings.Contains(rec.Header().Get("WWW-Authenticate"), test.challenge) {
				t.Errorf("%s, request %d: %d %q, want %d with %s", test.answer, i+1, rec.Code, rec.Header().Get("WWW-Authenticate"), test.want, test.challenge)
			}
		}
		if rig.calls() != test.calls {
			t.Errorf("%s: %d IdP calls, want %d", test.answer, rig.calls(), test.calls)
		}
		if _, hits := rig.up.seen(); hits != 0 {
			t.Errorf("%s: %d requests reached upstream", test.answer, hits)
		}
	}
}
