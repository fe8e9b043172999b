package oauthintrospection

// This file uses the standard library only. The benchmarks run compiled (go test -bench) and inside
// Yaegi through BenchmarkInterpreted in yaegi_test.go.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchRig is the Hub manifest of the README (a claims expression, two forwarded headers) in front
// of a local IdP that answers like node-oidc-provider. In Traefik the next handler and the
// ResponseWriter are compiled code; so are these: a recorder without a body keeps nothing, so a
// loop measures the middleware. The Authorization header is kept (forwardAuthorization) so that
// the same request can be served again.
func benchRig(b *testing.B, name string, tune func(*Config)) (http.Handler, *http.Request, http.ResponseWriter) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"active":true,"grp":"admin","username":"alice","user":{"name":"Alice Admin","status":"active"},"areas":["office","home"],"client_id":"app-admin","exp":4102444800,"iat":1767225600,"iss":"http://127.0.0.1:9090","scope":"api:read","token_type":"Bearer"}`))
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
