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

// leastHitSource is the least a correct cache hit can do under Yaegi: find the one token header,
// check its scheme, hash the token, look the digest up under a read lock, check the entry's
// validity window against the clock, set one identity header and call next. It is what no
// rewrite of the hit path can go under, so the distance from the floor to it is the part of the
// hit that only a faster interpreter would remove.
const leastHitSource = `package leasthit

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"
)

type Config struct{}

func CreateConfig() *Config { return &Config{} }

type entry struct {
	from, until int64
	group       string
}

type LeastHit struct {
	next    http.Handler
	mu      *sync.RWMutex
	entries map[[32]byte]*entry
}

func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	token := "2YotnFZFEjr1zCsicMWpAA-bench-token"
	entries := map[[32]byte]*entry{sha256.Sum256([]byte(token)): {from: 0, until: 1 << 62, group: "admin"}}
	return &LeastHit{next: next, mu: &sync.RWMutex{}, entries: entries}, nil
}

func (p *LeastHit) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	vals := req.Header["Authorization"]
	if len(vals) != 1 || len(vals[0]) <= 7 || !strings.EqualFold(vals[0][:7], "Bearer ") {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	p.mu.RLock()
	e := p.entries[sha256.Sum256([]byte(vals[0][7:]))]
	p.mu.RUnlock()
	now := time.Now().Unix()
	if e == nil || now >= e.until || now < e.from {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	req.Header["Group"] = []string{e.group}
	p.next.ServeHTTP(rw, req)
}
`

// leastMissSource is the least a correct miss can do under Yaegi: find the token, POST it
// form-encoded with Basic client credentials to the endpoint with a deadline, check the status and
// the media type, decode the JSON object with numbers kept as text, check active, evaluate one
// claim, set one identity header and call next. No cache, no coalescing, no retries and no time
// claims: it is what no rewrite of the miss path can go under. IDP_URL is replaced by the bench
// IdP's address.
const leastMissSource = `package leastmiss

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

type Config struct{}

func CreateConfig() *Config { return &Config{} }

type LeastMiss struct {
	next   http.Handler
	client *http.Client
}

func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return &LeastMiss{next: next, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}, nil
}

func (p *LeastMiss) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	vals := req.Header["Authorization"]
	if len(vals) != 1 || len(vals[0]) <= 7 || !strings.EqualFold(vals[0][:7], "Bearer ") {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, "IDP_URL", strings.NewReader("token="+url.QueryEscape(vals[0][7:])))
	if err != nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	out.SetBasicAuth("rs-basic", "rs-basic-secret")
	out.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	out.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	defer resp.Body.Close()
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || err != nil || mt != "application/json" {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if active, _ := claims["active"].(bool); !active {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	group, _ := claims["grp"].(string)
	if group != "admin" {
		http.Error(rw, "Forbidden", http.StatusForbidden)
		return
	}
	req.Header["Group"] = []string{group}
	p.next.ServeHTTP(rw, req)
}
`

// benchIDP answers like node-oidc-provider: active for any token but those starting "bogus".
// calls counts the introspections, so that a row can show it made the calls it should.
func benchIDP(b *testing.B, calls *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if strings.HasPrefix(r.PostFormValue("token"), "bogus") {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		_, _ = w.Write([]byte(benchAnswer))
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// interpretSource loads a one-file plugin without options, package pkg, as Traefik would. The
// floor is the bench's and the e2e suite's pass-through plugin, read from e2e/testdata.
func interpretSource(b *testing.B, pkg, source string) http.Handler {
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
	out := fnNew.Call([]reflect.Value{reflect.ValueOf(context.Background()), reflect.ValueOf(http.Handler(http.NotFoundHandler())), fnConfig.Call(nil)[0], reflect.ValueOf(pkg + "@bench")})
	return out[0].Interface().(http.Handler)
}

// readSource returns the file at path, relative to the package.
func readSource(b *testing.B, path string) string {
	src, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return string(src)
}

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
	rows := []struct {
		name  string
		h     http.Handler
		auth  string // the Authorization header, "" for none
		calls bool   // whether each request asks the IdP
		fresh bool   // a new token on each request, as a flood of new tokens sends
		want  int    // the status: next answers 404
	}{
		{name: "floor", want: 404, h: interpretSource(b, "passthrough", readSource(b, "e2e/testdata/passthrough/passthrough.go")), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "least-hit", want: 404, h: interpretSource(b, "leasthit", leastHitSource), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "least-miss", want: 404, h: interpretSource(b, "leastmiss", strings.Replace(leastMissSource, "IDP_URL", idp, 1)), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
		{name: "hit", want: 404, h: build("hit@bench", nil), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token"},
		{name: "miss", want: 404, h: build("miss@bench", nil), auth: "Bearer 2YotnFZFEjr1zCsicMWpAA-bench-token", calls: true, fresh: true},
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
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if row.fresh {
					req.Header["Authorization"][0] = tokens[i]
				}
				row.h.ServeHTTP(rw, req)
			}
			b.StopTimer()
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
