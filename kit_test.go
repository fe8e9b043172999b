package oauthintrospection

// The test kit: the fake IdP, the upstream, option builders, and the helpers that send a request
// and check what came of it. Every test file uses these; the file is standard-library only, so the
// interpreted unit tests (yaegi_test.go) have it too.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// builder makes a handler from provider options, the way Traefik does, in one of the two modes.
// logs returns what the handler logged so far.
type builder func(t *testing.T, next http.Handler, options map[string]any, name string) (h http.Handler, logs func() string, err error)

// fakeIDP is an introspection endpoint whose answers a scenario scripts. It records what it got.
type fakeIDP struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  int
	last   *http.Request
	form   url.Values
	answer func(w http.ResponseWriter, r *http.Request, call int)
}

func newFakeIDP(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, call int)) *fakeIDP {
	return newTLSFakeIDP(t, nil, answer)
}

// newTLSFakeIDP is newFakeIDP over TLS with conf, or over plain HTTP when conf is nil.
func newTLSFakeIDP(t *testing.T, conf *tls.Config, answer func(w http.ResponseWriter, r *http.Request, call int)) *fakeIDP {
	f := &fakeIDP{answer: answer}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("IdP: parsing form: %v", err)
		}
		f.mu.Lock()
		f.calls++
		call := f.calls
		f.last = r
		f.form = r.PostForm
		f.mu.Unlock()
		f.answer(w, r, call)
	}))
	if conf == nil {
		f.srv.Start()
	} else {
		f.srv.TLS = conf
		f.srv.StartTLS()
	}
	t.Cleanup(func() { f.srv.Close() }) // Yaegi v0.16.1 cannot pass a method value of a compiled type
	return f
}

// activeIDP is a fake IdP that calls every token active.
func activeIDP(t *testing.T) *fakeIDP {
	return newFakeIDP(t, answerJSON(`{"active":true}`))
}

// lastCall returns the form and the Authorization header of the last call; the IdP must have
// been called.
func (f *fakeIDP) lastCall(t *testing.T) (url.Values, string) {
	t.Helper()
	calls, last, form := f.snapshot()
	if calls == 0 {
		t.Fatalf("the IdP was not called")
	}
	return form, last.Header.Get("Authorization")
}

func (f *fakeIDP) snapshot() (int, *http.Request, url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.last, f.form
}

// answerJSON returns an IdP answer with the given body and a JSON content type.
func answerJSON(body string) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func answerStatus(status int) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":"server_error","error_description":"idp-internal-detail"}`)
	}
}

// futureExp is an exp one hour ahead, as JSON text.
func futureExp() string { return fmt.Sprint(time.Now().Add(time.Hour).Unix()) }

// hubOptions is the Traefik Hub manifest of the README, as the file provider hands it over: every
// scalar a string.
func hubOptions(idpURL string) map[string]any {
	return map[string]any{
		"tokenSource": map[string]any{"header": "Authorization", "headerAuthScheme": "Bearer"},
		"clientConfig": map[string]any{
			"url":            idpURL,
			"headers":        map[string]any{"Authorization": "Basic ZXhhbXBsZTpleGFtcGxl"},
			"tokenTypeHint":  "access_token",
			"timeoutSeconds": "2",
			"maxRetries":     "2",
		},
		"forwardHeaders": map[string]any{"Group": "grp", "Expires-At": "exp"},
		"claims":         "Equals(`grp`, `admin`)",
	}
}

// with returns a copy of options with the dotted key set to v (a nil v deletes it).
func with(options map[string]any, key string, v any) map[string]any {
	out := copyOptions(options)
	parts := strings.Split(key, ".")
	m := out
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	if v == nil {
		delete(m, parts[len(parts)-1])
	} else {
		m[parts[len(parts)-1]] = v
	}
	return out
}

func copyOptions(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		if sub, ok := v.(map[string]any); ok {
			out[k] = copyOptions(sub)
		} else {
			out[k] = v
		}
	}
	return out
}

// upstream records the request that reached the protected service.
type upstream struct {
	mu   sync.Mutex
	req  *http.Request
	hits int
}

func (u *upstream) reset() {
	u.mu.Lock()
	u.req = nil
	u.hits = 0
	u.mu.Unlock()
}

func (u *upstream) seen() (*http.Request, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.req, u.hits
}

func bearer(tok string) func(*http.Request) { return header("Authorization", "Bearer "+tok) }

func header(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Add(k, v) }
}

func combine(fs ...func(*http.Request)) func(*http.Request) {
	return func(r *http.Request) {
		for _, f := range fs {
			f(r)
		}
	}
}

func failFirst(n, status int, body string) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, r *http.Request, call int) {
		if call <= n {
			w.WriteHeader(status)
			return
		}
		answerJSON(body)(w, r, call)
	}
}

func redirectTo(path string) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, path, http.StatusFound)
	}
}

func answerWithType(contentType, body string) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	}
}

func expectEqual(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// expectUpstream checks the headers the upstream saw against want (see absent). Names are looked
// up as they are written in want, so that a spelling net/http would not produce can be checked too.
func expectUpstream(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	for k, w := range want {
		vals, present := got[k]
		switch {
		case w == absent && present:
			t.Errorf("upstream header %s = %q, want it absent", k, vals)
		case w != absent && !present:
			t.Errorf("upstream header %s is absent, want %q", k, w)
		case w != absent && strings.Join(vals, ",") != w:
			t.Errorf("upstream header %s = %q, want %q", k, strings.Join(vals, ","), w)
		}
	}
}

func expectStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Errorf("status = %d, want %d", rec.Code, want)
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

// serveOne builds a middleware from cfg around a recording upstream and sends one request with token.
func serveOne(t *testing.T, cfg *Config, token string) (*httptest.ResponseRecorder, *upstream) {
	t.Helper()
	up := &upstream{}
	h, err := New(context.Background(), up, cfg, "idpclient@test")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return send(h, bearerRequest(token)), up
}

func bearerConfig(url string) *Config {
	cfg := CreateConfig()
	cfg.TokenSource.Header = "Authorization"
	cfg.TokenSource.HeaderAuthScheme = "Bearer"
	cfg.ClientConfig.URL = url
	cfg.ClientConfig.TimeoutSeconds = 1
	return cfg
}

func activeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true}`)
	})
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// selfSigned makes a self-signed certificate and key for mutual TLS tests: a CA that serves as
// its own client certificate.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM string, cert *x509.Certificate) {
	ca := newTestCA(t, cn)
	return ca.certPEM, ca.keyPEM, ca.cert
}

// testCA is a self-signed certificate that can sign leaves, with its key.
type testCA struct {
	cert            *x509.Certificate
	key             *ecdsa.PrivateKey
	certPEM, keyPEM string
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, certPEM: pemOf("CERTIFICATE", der), keyPEM: pemOf("PRIVATE KEY", keyDER)}
}

// leaf returns a server certificate for host (an IP address or DNS names), signed by ca.
func (ca *testCA) leaf(t *testing.T, host string, dnsNames ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "idp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key}
}

func rsaKeyPEM(t *testing.T) (string, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der), key
}

func ecKeyPEM(t testing.TB) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("EC PRIVATE KEY", der), key
}

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeInPlace truncates and rewrites the file, keeping its inode.
func writeInPlace(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeKeepingMtime rewrites the file in place and puts its modification time back.
func writeKeepingMtime(t *testing.T, path, content string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	writeInPlace(t, path, content)
	if err := os.Chtimes(path, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// writeByRename writes a new file beside path and renames it over path.
func writeByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	writeInPlace(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// captureLogs replaces the middleware's log with a buffer and returns a reader of it.
func captureLogs(m *middleware) func() string {
	var mu sync.Mutex
	var b strings.Builder
	m.logf = func(level, msg string) {
		mu.Lock()
		b.WriteString(level + ": " + msg + "\n")
		mu.Unlock()
	}
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return b.String()
	}
}

// expectGoroutinesBackTo polls until no more goroutines run than at baseline. Nothing started by
// the case may outlive it: connections of the middleware's transport, servers, handlers.
func expectGoroutinesBackTo(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= baseline {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines 5 s after the case, %d before it:\n%s", n, baseline, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// bearerRequest is a GET /api carrying token as a Bearer credential ("" sends none).
func bearerRequest(token string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/api", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// send serves req through h and returns what h answered.
func send(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// cacheRig is one middleware in front of a fake IdP that counts its calls, built as Traefik builds
// it: one handler for each of two routers, and a third from a second New with the same
// configuration, as a reload gives. Requests take turns through the three handlers.
type cacheRig struct {
	idp      *fakeIDP
	up       *upstream
	m        *middleware   // the first handler
	handlers []*middleware // the two routers' handlers, then the reload's
	turn     atomic.Int64
	config   func() *Config // a new copy of the rig's configuration, for another New
}

func newCacheRig(t *testing.T, name string, answer func(w http.ResponseWriter, r *http.Request, call int), tune func(*Config)) *cacheRig {
	t.Helper()
	idp := newFakeIDP(t, answer)
	newConfig := func() *Config {
		cfg := bearerConfig(idp.srv.URL)
		cfg.ClientConfig.TimeoutSeconds = 5
		cfg.ForwardHeaders = map[string]string{"Group": "grp"}
		if tune != nil {
			tune(cfg)
		}
		return cfg
	}
	rig := &cacheRig{idp: idp, up: &upstream{}, config: newConfig}
	for i := 0; i < 3; i++ {
		h, err := New(context.Background(), rig.up, newConfig(), name)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		m := h.(*middleware)
		if i > 0 && (m.settings != rig.m.settings || m.cache != rig.m.cache) {
			t.Fatalf("handler %d of one middleware runs on settings or a cache of its own", i)
		}
		if i == 0 {
			rig.m = m
		}
		rig.handlers = append(rig.handlers, m)
	}
	return rig
}

// do sends a request with token through the next handler in turn.
func (r *cacheRig) do(token string) *httptest.ResponseRecorder {
	return send(r, bearerRequest(token))
}

// ServeHTTP serves req through the next handler in turn.
func (r *cacheRig) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	h := r.handlers[int(r.turn.Add(1)-1)%len(r.handlers)]
	h.ServeHTTP(w, req)
}

func (r *cacheRig) calls() int {
	n, _, _ := r.idp.snapshot()
	return n
}
