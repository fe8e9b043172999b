//go:build !yaegi && !nointerp

package oauthintrospection

// BenchmarkTraefikPath measures the plugin as Traefik runs it: interpreted by Yaegi, built through
// CreateConfig, the options decode and New, and called from compiled code with a compiled next
// handler and ResponseWriter. (BenchmarkInterpreted runs the benchmark loop itself inside the
// interpreter, which adds an interpreted-to-interpreted call to every request.) The floor is a
// pass-through plugin interpreted the same way: what any Yaegi plugin costs. Each row reports
// ns/op and allocs/op; docs/performance.md has the figures.

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// benchIDP answers like node-oidc-provider: active for any token but those starting "bogus".
// calls counts the introspections, so that a row can show it made the calls it should.
func benchIDP(b *testing.B, calls *atomic.Int64) string {
	srv := httptest.NewServer(benchAnswers(calls))
	b.Cleanup(srv.Close)
	return srv.URL
}

// benchAnswers is the bench IdPs' handler; calls counts its introspections.
func benchAnswers(calls *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if strings.HasPrefix(r.PostFormValue("token"), "bogus") {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		_, _ = w.Write([]byte(benchAnswer))
	})
}

// benchFilesIDP is benchIDP over TLS, with its CA in a file and a client secret in another: the
// configuration whose miss re-reads files (at most every 5 s) and picks the TLS client each time.
// It returns the endpoint and the paths of the CA and of the secret.
func benchFilesIDP(b *testing.B, calls *atomic.Int64) (url, caFile, secretFile string) {
	srv := httptest.NewTLSServer(benchAnswers(calls))
	b.Cleanup(srv.Close)
	dir := b.TempDir()
	caFile = filepath.Join(dir, "ca.pem")
	secretFile = filepath.Join(dir, "secret")
	if err := os.WriteFile(caFile, []byte(pemOf("CERTIFICATE", srv.Certificate().Raw)), 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte("rs-basic-secret\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	return srv.URL, caFile, secretFile
}

// interpretSource loads a one-file plugin, package pkg, as Traefik would, with its CreateConfig's
// configuration and the fields of set changed. The floor is the bench's and the e2e suite's
// pass-through plugin, read from e2e/testdata; least-hit, least-miss and least-full, the floors of
// a hit, of a bare miss and of both with our features, are make bench's too (bench/least).
func interpretSource(b testing.TB, pkg, source string, set map[string]any) http.Handler {
	gopath := b.TempDir()
	dir := filepath.Join(gopath, "src", "example.test", pkg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, pkg+".go"), []byte(source), 0o644); err != nil {
		b.Fatal(err)
	}
	i := interp.New(interp.Options{GoPath: gopath, Stdout: io.Discard, Stderr: io.Discard})
	if err := i.Use(stdlib.Symbols); err != nil {
		b.Fatal(err)
	}
	if _, err := i.Eval(`import "example.test/` + pkg + `"`); err != nil {
		b.Fatal(err)
	}
	fnNew, err := i.Eval(pkg + ".New")
	if err != nil {
		b.Fatal(err)
	}
	fnConfig, err := i.Eval(pkg + ".CreateConfig")
	if err != nil {
		b.Fatal(err)
	}
	config := fnConfig.Call(nil)[0]
	for field, value := range set {
		config.Elem().FieldByName(field).Set(reflect.ValueOf(value))
	}
	out := fnNew.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(http.Handler(http.NotFoundHandler())), config, reflect.ValueOf(pkg + "@bench")})
	return out[0].Interface().(http.Handler)
}

// readSource returns the file at path, relative to the package.
func readSource(b testing.TB, path string) string {
	src, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return string(src)
}

// framesStart and framesStop, when set, are called around each row's measured loop:
// bench/frames/run.sh sets them, in a copy of this package built with a counting Yaegi, to count
// the interpreted calls and frame slots of a request. They stay nil in every other build.
var (
	framesStart func()
	framesStop  func(row string, requests int)
)

// minted numbers the fresh tokens of every run, so that no run meets another's cached tokens.
var minted atomic.Int64

func BenchmarkTraefikPath(b *testing.B) {
	var calls atomic.Int64
	idp := benchIDP(b, &calls)
	p := loadYaegiPlugin(b)
	build := func(name string, tune func(map[string]any)) http.Handler {
		o := map[string]any{
			"tokenSource":          map[string]any{"header": "Authorization", "headerAuthScheme": "Bearer"},
			"clientConfig":         map[string]any{"url": idp, "clientId": "rs-basic", "clientSecret": "rs-basic-secret"},
			"forwardHeaders":       map[string]any{"Group": "grp", "Expires-At": "exp"},
			"claims":               "Equals(`grp`, `admin`)",
			"forwardAuthorization": "true",
		}
		if tune != nil {
			tune(o)
		}
		h, err := p.build(context.Background(), http.NotFoundHandler(), o, name)
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	tlsIDP, caFile, secretFile := benchFilesIDP(b, &calls)
	withFiles := func(o map[string]any) {
		o["clientConfig"] = map[string]any{"url": tlsIDP, "clientId": "rs-basic", "clientSecretFile": secretFile, "tls": map[string]any{"ca": caFile}}
	}
	key, _ := ecKeyPEM(b)
	withJWT := func(o map[string]any) {
		o["clientConfig"] = map[string]any{"url": idp, "clientId": "rs-jwt", "authMethod": "private_key_jwt", "privateKey": key}
	}
	withRevocation := func(o map[string]any) {
		o["revocation"] = map[string]any{"path": "/revoke", "url": idp}
	}
	// least-full's configuration is the one build gives ours.
	full := map[string]any{"URL": idp, "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("rs-basic:rs-basic-secret")), "ForwardAuthorization": true}
	rows := []struct {
		name  string
		h     http.Handler
		auth  string // the Authorization header, "" for none
		calls bool   // whether each request asks the IdP
		fresh bool   // a new token on each request, as a flood of new tokens sends
		want  int    // the status: next answers 404
	}{
		{name: "floor", want: 404, h: interpretSource(b, "passthrough", readSource(b, "e2e/testdata/passthrough/passthrough.go"), nil), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "least-hit", want: 404, h: interpretSource(b, "leasthit", readSource(b, "bench/least/hit/leasthit.go"), nil), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "least-miss", want: 404, h: interpretSource(b, "leastmiss", readSource(b, "bench/least/miss/leastmiss.go"), map[string]any{"URL": idp}), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
		{name: "least-full-hit", want: 404, h: interpretSource(b, "leastfull", readSource(b, "bench/least/full/leastfull.go"), full), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "least-full-miss", want: 404, h: interpretSource(b, "leastfull", readSource(b, "bench/least/full/leastfull.go"), full), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
		{name: "hit", want: 404, h: build("hit@bench", nil), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		// A hit of a middleware with revocation, whose handler answers revocation.path itself.
		{name: "hit-revocation", want: 404, h: build("hit-revocation@bench", withRevocation), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "miss", want: 404, h: build("miss@bench", nil), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
		// A miss with the options whose credentials or client are worked out per call: a client
		// secret and a CA read from files (TLS), and a private_key_jwt assertion signed per call.
		{name: "miss-files", want: 404, h: build("miss-files@bench", withFiles), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
		{name: "miss-jwt", want: 404, h: build("miss-jwt@bench", withJWT), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
		{name: "bogus", want: 401, h: build("bogus@bench", nil), auth: "Bearer bogus-2YotnFZFEjr1zCsicMWpAA", calls: true},
		{name: "malformed", want: 401, h: build("malformed@bench", nil), auth: "Bearer Bearer 2YotnFZFEjr1zCsicMWpAA"},
	}
	for _, row := range rows {
		b.Run(row.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header.Set("Authorization", row.auth)
			rw := httptest.NewRecorder()
			rw.Body = nil
			row.h.ServeHTTP(rw, req) // warms the path, and fills the cache for the hit row
			var tokens []string
			if row.fresh {
				tokens = make([]string, b.N)
				for i := range tokens {
					tokens[i] = row.auth + "-" + strconv.FormatInt(minted.Add(1), 10)
				}
			}
			before := calls.Load()
			b.ReportAllocs()
			if framesStart != nil {
				framesStart()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if row.fresh {
					req.Header["Authorization"][0] = tokens[i]
				}
				row.h.ServeHTTP(rw, req)
			}
			b.StopTimer()
			if framesStop != nil {
				framesStop(row.name, b.N)
			}
			if made := calls.Load() - before; (made == int64(b.N)) != row.calls {
				b.Fatalf("%d IdP calls for %d requests", made, b.N)
			}
			check := httptest.NewRecorder()
			row.h.ServeHTTP(check, req)
			if check.Code != row.want {
				b.Fatalf("status %d, want %d", check.Code, row.want)
			}
		})
	}
}
