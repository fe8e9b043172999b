package oauthintrospection

// This file uses the standard library only. The benchmarks run compiled (go test -bench) and inside
// Yaegi through BenchmarkInterpreted in yaegi_test.go.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkCacheHit measures the hot path: a request whose token is in the cache, with a claims
// expression and two forwarded headers, as the Hub manifest of the README configures.
func BenchmarkCacheHit(b *testing.B) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"active":true,"grp":"admin","exp":4102444800}`))
	}))
	defer idp.Close()
	cfg := CreateConfig()
	cfg.TokenSource = TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer"}
	cfg.ClientConfig.URL = idp.URL
	cfg.ForwardHeaders = map[string]string{"Group": "grp", "Expires-At": "exp"}
	cfg.Claims = "Equals(`grp`, `admin`)"
	// Keep the Authorization header so that the same request can be served again.
	cfg.ForwardAuthorization = true
	// In Traefik the next handler and the ResponseWriter are compiled code; so are these: a
	// recorder without a body keeps nothing, so the loop measures the middleware.
	next := http.NotFoundHandler()
	h, err := New(context.Background(), next, cfg, "bench@test")
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token")
	rw := httptest.NewRecorder()
	rw.Body = nil
	h.ServeHTTP(rw, req) // fills the cache
	if req.Header.Get("Group") != "admin" {
		b.Fatalf("warm-up request was not authorized")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(rw, req)
	}
}

// BenchmarkCacheMiss measures a request whose token is not cached: the whole introspection call to
// a local IdP that answers like node-oidc-provider, the verdict, and the cache update.
func BenchmarkCacheMiss(b *testing.B) {
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"active":true,"grp":"admin","username":"alice","user":{"name":"Alice Admin","status":"active"},"areas":["office","home"],"client_id":"app-admin","exp":4102444800,"iat":1767225600,"iss":"http://127.0.0.1:9090","scope":"api:read","token_type":"Bearer"}`))
	}))
	defer idp.Close()
	cfg := CreateConfig()
	cfg.TokenSource = TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer"}
	cfg.ClientConfig.URL = idp.URL
	cfg.ClientConfig.ClientID = "rs-basic"
	cfg.ClientConfig.ClientSecret = "rs-basic-secret"
	cfg.ForwardHeaders = map[string]string{"Group": "grp", "Expires-At": "exp"}
	cfg.Claims = "Equals(`grp`, `admin`)"
	cfg.ForwardAuthorization = true
	cfg.Cache.TTLSeconds = 0 // every request is a miss
	h, err := New(context.Background(), http.NotFoundHandler(), cfg, "benchmiss@test")
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	req.Header.Set("Authorization", "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token")
	rw := httptest.NewRecorder()
	rw.Body = nil
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(rw, req)
	}
	if req.Header.Get("Group") != "admin" {
		b.Fatalf("the request was not authorized")
	}
}
