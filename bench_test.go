package oauthintrospection

// This file uses the standard library only. The benchmarks run compiled (go test -bench) and inside
// Yaegi through BenchmarkInterpreted in yaegi_test.go.

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchAnswer is an active answer as node-oidc-provider gives it, with the claims the rig forwards.
const benchAnswer = `{"active":true,"grp":"admin","username":"alice","user":{"name":"Alice Admin","status":"active"},"areas":["office","home"],"client_id":"app-admin","exp":4102444800,"iat":1767225600,"iss":"http://127.0.0.1:9090","scope":"api:read","token_type":"Bearer"}`

// benchRig is the Hub manifest of the README (a claims expression, two forwarded headers) in front
// of a local IdP that answers like node-oidc-provider. In Traefik the next handler and the
// ResponseWriter are compiled code; so are these: a recorder without a body keeps nothing, so a
// loop measures the middleware. The Authorization header is kept (forwardAuthorization) so that
// the same request can be served again.
func benchRig(b *testing.B, name string, tune func(*Config)) (http.Handler, *http.Request, http.ResponseWriter) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(benchAnswer))
	}))
	b.Cleanup(func() { idp.Close() })
	cfg := CreateConfig()
	cfg.TokenSource = TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer"}
	cfg.ClientConfig.URL = idp.URL
	cfg.ForwardHeaders = map[string]string{"Group": "grp", "Expires-At": "exp"}
	cfg.Claims = "Equals(`grp`, `admin`)"
	cfg.ForwardAuthorization = true
	if tune != nil {
		tune(cfg)
	}
	h, err := New(context.Background(), http.NotFoundHandler(), cfg, name)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token")
	rw := httptest.NewRecorder()
	rw.Body = nil
	return h, req, rw
}

// benchLoop serves req b.N times and checks that it was authorized.
func benchLoop(b *testing.B, h http.Handler, req *http.Request, rw http.ResponseWriter) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(rw, req)
	}
	b.StopTimer()
	if req.Header.Get("Group") != "admin" {
		b.Fatalf("the request was not authorized")
	}
}

// BenchmarkCacheHit measures the hot path: a request whose token is in the cache.
func BenchmarkCacheHit(b *testing.B) {
	h, req, rw := benchRig(b, "benchhit@test", nil)
	h.ServeHTTP(rw, req) // fills the cache
	benchLoop(b, h, req, rw)
}

// BenchmarkCacheMiss measures a request whose token is not cached: the whole introspection call
// with client_secret_basic, the verdict, and the coalescing bookkeeping.
func BenchmarkCacheMiss(b *testing.B) {
	h, req, rw := benchRig(b, "benchmiss@test", func(cfg *Config) {
		cfg.ClientConfig.ClientID = "rs-basic"
		cfg.ClientConfig.ClientSecret = "rs-basic-secret"
		cfg.Cache.TTLSeconds = 0 // every request is a miss
	})
	benchLoop(b, h, req, rw)
}

// BenchmarkCacheEntryBytes fills a cache with entries as the benchmark rig's answers make them
// (a verdict with two forwarded values, judged from a decoded answer of the IdP) and reports the
// heap each one holds: the entry, its verdict, the values, the map slot and the ring slot. The
// cache's own accounting (maxBytes) charges entryOverhead plus the value bytes for the same
// entry; docs/caching.md compares the two.
func BenchmarkCacheEntryBytes(b *testing.B) {
	const entries = 20000
	cfg := CreateConfig()
	cfg.TokenSource = TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer"}
	cfg.ClientConfig.URL = "http://127.0.0.1:1/introspect"
	cfg.ForwardHeaders = map[string]string{"Group": "grp", "Expires-At": "exp"}
	cfg.Claims = "Equals(`grp`, `admin`)"
	s, err := compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().Unix()
	b.ReportAllocs()
	var held, charged float64
	for n := 0; n < b.N; n++ {
		c := newVerdictCache(CacheConfig{TTLSeconds: 300, MaxEntries: entries, MaxBytes: 1 << 40})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < entries; i++ {
			dec := json.NewDecoder(strings.NewReader(benchAnswer))
			dec.UseNumber()
			var claims map[string]any
			if err := dec.Decode(&claims); err != nil {
				b.Fatal(err)
			}
			key := tokenKey("2YotnFZFEjr1zCsicMWpAA-"+strconv.Itoa(i), nil, nil)
			v := judge(s, claims)
			p, _ := join(c, key)
			publish(c, key, p, v, newEntry(c, v, now), true)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := len(c.entries); got != entries {
			b.Fatalf("%d entries, want %d", got, entries)
		}
		held = float64(after.HeapAlloc-before.HeapAlloc) / entries
		charged = float64(c.bytes) / entries
		runtime.KeepAlive(c)
	}
	b.ReportMetric(held, "heap-bytes/entry")
	b.ReportMetric(charged, "charged-bytes/entry")
}

// BenchmarkSharedTier measures the shared tier (cache.redis) against a local redis-server:
//
//   - idp-miss: a local miss without Redis (an IdP call);
//   - idp-miss+redis: a miss with Redis that Redis does not hold either (MGET, the IdP call, SET);
//   - redis-hit: a local miss that Redis answers (MGET only), as a second replica's first request;
//   - hit+redis: a local hit with Redis configured (Redis is not asked).
//
// two-replicas reports the IdP calls per token when two replicas each see every token once,
// without and with Redis.
func BenchmarkSharedTier(b *testing.B) {
	srv := startRedis(b)
	withRedis := func(cfg *Config) {
		cfg.Cache.Redis.Endpoints = []string{srv.addr}
		cfg.Cache.Redis.TimeoutMilliseconds = 1000
	}
	run := func(name string, tune func(*Config), each func(m *middleware)) {
		b.Run(name, func(b *testing.B) {
			h, req, rw := benchRig(b, "benchshared-"+name+"@test", tune)
			m := inner(h)
			h.ServeHTTP(rw, req)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if each != nil {
					b.StopTimer()
					each(m)
					b.StartTimer()
				}
				h.ServeHTTP(rw, req)
			}
			b.StopTimer()
			if req.Header.Get("Group") != "admin" {
				b.Fatalf("the request was not authorized")
			}
		})
	}
	dropRedis := func(m *middleware) {
		forgetLocal(m)
		key := sharedAnswerKey(m.settings.shared, sha256.Sum256([]byte("2YotnFZFEjr1zCsicMWpAA-bench-token")))
		if _, err := redisDo(m.settings.shared.client, "DEL", key); err != nil {
			b.Fatal(err)
		}
	}
	run("idp-miss", nil, forgetLocal)
	run("idp-miss+redis", withRedis, dropRedis)
	run("redis-hit", withRedis, forgetLocal)
	run("hit+redis", withRedis, nil)

	b.Run("two-replicas", func(b *testing.B) {
		for _, redis := range []bool{false, true} {
			calls := 0
			idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				calls++
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(benchAnswer))
			}))
			var replicas []http.Handler
			for _, name := range []string{"a", "b"} {
				cfg := CreateConfig()
				cfg.TokenSource = TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer"}
				cfg.ClientConfig.URL = idp.URL
				if redis {
					withRedis(cfg)
					cfg.Cache.Redis.KeyPrefix = "bench-" + strconv.Itoa(b.N) + ":"
				}
				h, err := New(context.Background(), http.NotFoundHandler(), cfg, "benchreplica-"+name+strconv.FormatBool(redis)+"@test")
				if err != nil {
					b.Fatal(err)
				}
				replicas = append(replicas, h)
			}
			const tokens = 100
			for i := 0; i < tokens; i++ {
				for _, h := range replicas {
					req := httptest.NewRequest(http.MethodGet, "/api", nil)
					req.Header.Set("Authorization", "Bearer two-replicas-"+strconv.Itoa(b.N)+"-"+strconv.Itoa(i))
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusNotFound { // the next handler: authorized
						b.Fatalf("status %d", rec.Code)
					}
				}
			}
			idp.Close()
			metric := "idp-calls/token"
			if redis {
				metric = "idp-calls/token-with-redis"
			}
			b.ReportMetric(float64(calls)/tokens, metric)
		}
	})
}
