package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// Nothing secret or hostile reaches New's error, a log line or a client: the configuration errors
// never quote a value, secret files are read safely, and client authentication refuses what would
// send a credential twice or where it cannot work.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// secretMarker starts every secret the tests below put where it does not belong.
const secretMarker = "S3CR3T"

// misplacedSecrets are configurations New must refuse, each with a secret in the field that is
// wrong, as an operator would paste it. The error must name the field and never hold the secret.
func misplacedSecrets(t *testing.T) []struct {
	desc    string
	options map[string]any
	field   string
} {
	dir := t.TempDir()
	twoLines := writeTemp(t, dir, "two-lines", secretMarker+"-line-1\n"+secretMarker+"-line-2\n")
	garbagePEM := "-----BEGIN PRIVATE KEY-----\n" + secretMarker + "AAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n"
	pemInPathField := "-----BEGIN EC PRIVATE KEY-----\nMHcC" + secretMarker + "-key-body\n-----END EC PRIVATE KEY-----\n"
	base := hubOptions("http://127.0.0.1:1/introspect")
	jwt := func(key map[string]any) map[string]any {
		o := with(base, "clientConfig.headers", map[string]any{})
		o = with(o, "clientConfig.clientId", "gw")
		o = with(o, "clientConfig.authMethod", "private_key_jwt")
		for k, v := range key {
			o = with(o, "clientConfig."+k, v)
		}
		return o
	}
	s := secretMarker
	return []struct {
		desc    string
		options map[string]any
		field   string
	}{
		{"a secret as the URL", with(base, "clientConfig.url", s+"-url:%zz"), "clientConfig.url"},
		{"a secret as the URL's scheme", with(base, "clientConfig.url", s+"://idp/x"), "clientConfig.url"},
		{"credentials in a URL that does not parse", with(base, "clientConfig.url", "https://client:"+s+"@idp/x%zz"), "clientConfig.url"},
		{"credentials in the URL", with(base, "clientConfig.url", "https://client:"+s+"@idp/x"), "clientConfig.url"},
		{"a Basic credential holding {{", with(base, "clientConfig.headers.Authorization", "Basic "+s+"{{x"), "clientConfig.headers.Authorization"},
		{"a header value with a line break", with(base, "clientConfig.headers.Authorization", "Basic "+s+"\n"), "clientConfig.headers.Authorization"},
		{"a secret as a header name", with(base, "clientConfig.headers", map[string]any{s + " x": "v"}), "clientConfig.headers"},
		{"a secret as the token header", with(base, "tokenSource.header", s+" x"), "tokenSource.header"},
		{"a secret as the auth scheme", with(base, "tokenSource.headerAuthScheme", s+" x"), "tokenSource.headerAuthScheme"},
		{"a secret as the cookie", with(base, "tokenSource.cookie", s+";x"), "tokenSource.cookie"},
		{"a secret as the query parameter", with(base, "tokenSource.query", s+"=x"), "tokenSource.query"},
		{"a secret as a forwarded header name", with(base, "forwardHeaders", map[string]any{s + " x": "sub"}), "forwardHeaders"},
		{"a secret as a claim path", with(base, "forwardHeaders", map[string]any{"X-A": s + "..x"}), "forwardHeaders.X-A"},
		{"a secret as usernameClaim", with(base, "usernameClaim", s+".."), "usernameClaim"},
		{"a secret as a misplaced string in claims", with(base, "claims", "Equals(`a`, `b`) `"+s+"`"), "claims"},
		{"a secret as a claims key path", with(base, "claims", "Equals(`"+s+"..`, `b`)"), "claims"},
		{"a secret in a bad claims string", with(base, "claims", `Equals("a", "`+s+`\q")`), "claims"},
		{"a secret left unquoted in claims", with(base, "claims", "Equals(`client_id`, "+s+"_abcdefghijklmnopqrstuvwxyz0123456789)"), "claims"},
		{"a secret as a claims function", with(base, "claims", s+"_XYZ(`a`, `b`)"), "claims"},
		{"a secret after an expression", with(base, "claims", "Equals(`a`, `b`) "+s), "claims"},
		{"a secret as authMethod", with(with(base, "clientConfig.clientId", "gw"), "clientConfig.authMethod", s), "clientConfig.authMethod"},
		{"a secret in both secret fields", with(with(with(base, "clientConfig.clientId", "gw"), "clientConfig.clientSecret", s+"-a"), "clientConfig.clientSecretFile", s+"-b"), "clientConfig.clientSecret"},
		{"a secret in clientSecretFile", with(with(base, "clientConfig.clientId", "gw"), "clientConfig.clientSecretFile", s+"-in-the-wrong-field"), "clientConfig.clientSecretFile"},
		{"a secret file of two lines", with(with(base, "clientConfig.clientId", "gw"), "clientConfig.clientSecretFile", twoLines), "clientConfig.clientSecretFile"},
		{"a secret as privateKey", jwt(map[string]any{"privateKey": s}), "clientConfig.privateKey"},
		{"a PEM block that does not parse", jwt(map[string]any{"privateKey": garbagePEM}), "clientConfig.privateKey"},
		{"a PEM key in privateKeyFile", jwt(map[string]any{"privateKeyFile": pemInPathField}), "clientConfig.privateKeyFile"},
		{"a secret as signingAlgorithm", jwt(map[string]any{"privateKey": mustECPEM(t), "signingAlgorithm": s}), "clientConfig.signingAlgorithm"},
		{"a secret as tls.ca", with(base, "clientConfig.tls", map[string]any{"ca": s + "-not-a-path"}), "clientConfig.tls.ca"},
		{"a base64 key in tls.key", with(base, "clientConfig.tls", map[string]any{"cert": mustCertPEM(t), "key": s + "bG9uZ2Jhc2U2NA=="}), "clientConfig.tls.key"},
		{"a CA PEM that does not parse", with(base, "clientConfig.tls", map[string]any{"ca": strings.ReplaceAll(garbagePEM, "PRIVATE KEY", "CERTIFICATE")}), "clientConfig.tls.ca"},
		{"a key PEM that does not match", with(base, "clientConfig.tls", map[string]any{"cert": mustCertPEM(t), "key": garbagePEM}), "clientConfig.tls"},
		{"a Redis URL with a password as an endpoint", with(base, "cache.redis", map[string]any{"endpoints": []any{"127.0.0.1:6379", "redis://default:" + s + "@redis:6379"}}), "cache.redis.endpoints"},
		{"a Redis password as an endpoint", with(base, "cache.redis", map[string]any{"endpoints": s + "-password"}), "cache.redis.endpoints"},
	}
}

// runMisplacedSecrets builds every misplacedSecrets configuration with build.
func runMisplacedSecrets(t *testing.T, build builder) {
	for i, test := range misplacedSecrets(t) {
		test := test
		t.Run(test.desc, func(t *testing.T) {
			_, logs, err := build(t, &upstream{}, test.options, fmt.Sprintf("misplaced-%d@test", i))
			if err == nil {
				t.Fatalf("New accepted the configuration")
			}
			if !strings.HasPrefix(err.Error(), test.field) {
				t.Errorf("error %q does not name %s", err, test.field)
			}
			if strings.Contains(err.Error(), secretMarker) {
				t.Errorf("New's error quotes the secret: %q", err)
			}
			if logs != nil && strings.Contains(logs(), secretMarker) {
				t.Errorf("the log holds the secret:\n%s", logs())
			}
		})
	}
}

func mustECPEM(t *testing.T) string {
	p, _ := ecKeyPEM(t)
	return p
}

func mustCertPEM(t *testing.T) string {
	return newTestCA(t, "client").certPEM
}

// TestSecretFileFormat pins the format of clientSecretFile: the secret on one line, one trailing
// LF or CRLF allowed, anything else refused with a reason that does not quote the content.
func TestSecretFileFormat(t *testing.T) {
	for _, test := range []struct {
		content string
		want    string // the secret, or the start of the error
	}{
		{"s3cret", "s3cret"},
		{"s3cret\n", "s3cret"},
		{"s3cret\r\n", "s3cret"},
		{"s:e%c r=t\n", "s:e%c r=t"},
		{"", "error: the file holds no secret"},
		{"\n", "error: the file holds no secret"},
		{"\r\n", "error: the file holds no secret"},
		{"\ufeffs3cret\n", "error: the file starts with a byte-order mark"},
		{" s3cret\n", "error: the secret has leading or trailing blanks"},
		{"s3cret \n", "error: the secret has leading or trailing blanks"},
		{"s3cret\t\n", "error: the secret has leading or trailing blanks"},
		{"s3cret\n\n", "error: the file has more than one line"},
		{"s3cret\nsecond\n", "error: the file has more than one line"},
		{"s3cret\r", "error: the file has more than one line"},
		{"s3\x00cret", "error: the secret has a control character"},
	} {
		secret, err := parseSecret([]byte(test.content))
		got := secret
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, test.want) {
			t.Errorf("parseSecret(%q) = %q, want %q", test.content, got, test.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3") {
			t.Errorf("parseSecret(%q): the error quotes the content: %v", test.content, err)
		}
	}
}

// TestSecretFileReadsSafely: a FIFO in the secret file's place never blocks New or a request, and
// a huge file never becomes a huge header.
func TestSecretFileReadsSafely(t *testing.T) {
	dir := t.TempDir()
	fifo := testFIFO(t, dir)
	huge := writeTemp(t, dir, "huge", strings.Repeat("x", 4<<20)+"\n")
	newWithFile := func(path string) error {
		cfg := bearerConfig("http://127.0.0.1:1/")
		cfg.ClientConfig.ClientID = "gw"
		cfg.ClientConfig.ClientSecretFile = path
		done := make(chan error, 1)
		go func() {
			_, err := New(context.Background(), &upstream{}, cfg, "fifo@test")
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatalf("New blocked on %s", filepath.Base(path))
			return nil
		}
	}
	if err := newWithFile(fifo); err == nil || err.Error() != "clientConfig.clientSecretFile: not a regular file" {
		t.Errorf("a FIFO: %v", err)
	}
	if err := newWithFile(huge); err == nil || err.Error() != "clientConfig.clientSecretFile: larger than 4096 bytes" {
		t.Errorf("a 4 MiB file: %v", err)
	}

	// The same files put in place of a good one while Traefik runs: the last secret stays.
	idp := activeIDP(t)
	file := writeTemp(t, dir, "secret", "good-secret\n")
	cfg := bearerConfig(idp.srv.URL)
	cfg.ClientConfig.ClientID = "gw"
	cfg.ClientConfig.ClientSecretFile = file
	cfg.ClientConfig.AuthMethod = "client_secret_post"
	cfg.Cache.TTLSeconds = 0
	h, err := New(context.Background(), &upstream{}, cfg, "swapped@test")
	if err != nil {
		t.Fatal(err)
	}
	m := h.(*middleware)
	logs := captureLogs(m)
	for _, replacement := range []string{fifo, huge} {
		if err := os.Rename(replacement, file); err != nil {
			t.Fatal(err)
		}
		checkNow(m.idp.auth.secret.file)
		done := make(chan int, 1)
		go func() {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer t")
			done <- send(m, req).Code
		}()
		select {
		case code := <-done:
			expectEqual(t, "status", fmt.Sprint(code), "200")
		case <-time.After(10 * time.Second):
			t.Fatalf("a request blocked on the replaced secret file")
		}
		form, _ := idp.lastCall(t)
		expectEqual(t, "secret sent", form.Get("client_secret"), "good-secret")
	}
	out := logs()
	for _, want := range []string{"clientConfig.clientSecretFile: not a regular file", "clientConfig.clientSecretFile: larger than 4096 bytes"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
}

// testFIFO returns a new FIFO in dir, made from one that TestMain made (fifo_test.go): the
// interpreter has neither syscall nor os/exec to make one, and a FIFO can be renamed, not copied.
func testFIFO(t *testing.T, dir string) string {
	t.Helper()
	made := os.Getenv("OAUTHINTROSPECTION_TEST_FIFOS")
	if made == "" {
		t.Fatal("no FIFOs: TestMain makes them")
	}
	entries, err := os.ReadDir(made)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no FIFO left in %s: %v", made, err)
	}
	path := filepath.Join(dir, "fifo")
	if err := os.Rename(filepath.Join(made, entries[0].Name()), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHalfWrittenSecretIsNeverTaken: a writer that rewrites the file in place (truncate, then
// write in two halves) is never caught halfway: a change in place is taken only once a read a
// moment later agrees.
func TestHalfWrittenSecretIsNeverTaken(t *testing.T) {
	path := writeTemp(t, t.TempDir(), "secret", "aaaaaaaaaaaaaaaa-first\n")
	w, err := openWatched(path, maxSecretFileBytes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Step by step: half, then whole.
	writeInPlace(t, path, "bbbbbbbb")
	checkNow(w)
	if got := pollFile(w, time.Now()); got != nil {
		t.Fatalf("a half-written file was taken: %q", got)
	}
	writeInPlace(t, path, "bbbbbbbbbbbbbbbb-second\n")
	checkNow(w)
	if got := pollFile(w, time.Now()); got != nil {
		t.Fatalf("a change was taken on one read: %q", got)
	}
	checkNow(w)
	if got := string(pollFile(w, time.Now())); got != "bbbbbbbbbbbbbbbb-second\n" {
		t.Fatalf("the confirmed change: %q", got)
	}

	// Against a writer that keeps truncating and writing in two halves, with a pause between
	// the halves, and then leaves the whole secret in place for a while: the reader polls all along.
	secrets := []string{"cccccccccccccccccccccccc-third\n", "dddddddddddddddddddddddd-fourth\n"}
	w.interval = 0
	w.confirm = 50 * time.Millisecond
	checkNow(w)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := secrets[i%2]
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			_, _ = f.WriteString(s[:len(s)/2])
			time.Sleep(10 * time.Millisecond) // the writer caught halfway, for a fifth of the confirm delay
			_, _ = f.WriteString(s[len(s)/2:])
			f.Close()
			time.Sleep(150 * time.Millisecond)
		}
	}()
	polls, taken := 0, 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		content := pollFile(w, time.Now())
		polls++
		if content == nil {
			continue
		}
		taken++
		if got := string(content); got != secrets[0] && got != secrets[1] {
			t.Errorf("a half-written secret was taken: %q", got)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d polls, %d changes taken", polls, taken)
	if taken < 3 {
		t.Errorf("only %d changes taken in 2 s of rewrites: the test did not exercise the reader", taken)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// withLogger runs build while the standard logger, which the logger of a new shared state writes
// its ERROR lines to, writes to logger's buffer instead. The name's state is forgotten first, so
// that build makes it afresh.
func withLogger(name string, w *lockedWriter, build func()) {
	registryMu.Lock()
	delete(registry, name)
	registryMu.Unlock()
	saved := log.Writer()
	log.SetOutput(w)
	defer log.SetOutput(saved)
	build()
}

// TestKeyErrorsThatHelp: an encrypted key says so, and the EC PARAMETERS block openssl ecparam
// -genkey writes before the key is skipped.
func TestKeyErrorsThatHelp(t *testing.T) {
	ecPEM, ecKey := ecKeyPEM(t)
	der, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	legacy := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: der}))
	pkcs8 := pemOf("ENCRYPTED PRIVATE KEY", []byte("opaque"))
	params := pemOf("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}) + ecPEM
	for _, test := range []struct {
		desc, pem, want string
	}{
		{"legacy encrypted PEM", legacy, "encrypted keys are not supported"},
		{"encrypted PKCS #8", pkcs8, "encrypted keys are not supported"},
		{"EC PARAMETERS before the key", params, ""},
		{"a certificate instead of a key", mustCertPEM(t), "the PEM block is not a private key"},
	} {
		t.Run(test.desc, func(t *testing.T) {
			_, err := parsePrivateKey([]byte(test.pem))
			switch {
			case test.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case test.want != "" && (err == nil || !strings.HasPrefix(err.Error(), test.want)):
				t.Errorf("error %v, want %q", err, test.want)
			}
		})
	}
}

// TestClientConditionsCannotCrowdOutErrors: what a client causes (a request path with a line
// feed that a header template renders) is logged at DEBUG, and every kind of ERROR line has its
// own budget, so the IdP's invalid_client is logged right after a flood of other errors.
func TestClientConditionsCannotCrowdOutErrors(t *testing.T) {
	idp := newFakeIDP(t, func(w http.ResponseWriter, r *http.Request, call int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
	})
	name := "crowd@test"
	var out bytes.Buffer
	var mu sync.Mutex
	var h http.Handler
	withLogger(name, &lockedWriter{mu: &mu, w: &out}, func() {
		cfg := bearerConfig(idp.srv.URL)
		cfg.ClientConfig.MaxRetries = 0
		cfg.ClientConfig.Headers = map[string]string{"X-Path": "{{ .Request.URL.Path }}"}
		var err error
		if h, err = New(context.Background(), &upstream{}, cfg, name); err != nil {
			t.Fatal(err)
		}
	})
	for i := 0; i < 20; i++ {
		req := httptest.NewRequest(http.MethodGet, "/a%0ab", nil)
		req.Header.Set("Authorization", "Bearer t")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	logger := h.(*middleware).logf
	logger("error", "introspection failed: request failed: connection refused (attempts: 1)")
	logger("error", "introspection failed: request failed: connection refused (attempts: 1)")
	req := httptest.NewRequest(http.MethodGet, "/ok", nil)
	req.Header.Set("Authorization", "Bearer t")
	h.ServeHTTP(httptest.NewRecorder(), req)
	mu.Lock()
	got := out.String()
	mu.Unlock()
	if strings.Contains(got, "control character") {
		t.Errorf("a condition the client caused was logged at ERROR:\n%s", got)
	}
	if !strings.Contains(got, "endpoint answered 401 (invalid_client)") {
		t.Errorf("invalid_client was crowded out:\n%s", got)
	}
	if strings.Count(got, "connection refused") != 1 {
		t.Errorf("one kind was not limited to one line:\n%s", got)
	}
}

// TestSchemeIsComparedAsParsed: the URL's scheme is compared after parsing, which lower-cases it.
func TestSchemeIsComparedAsParsed(t *testing.T) {
	ca := newTestCA(t, "client")
	cfg := bearerConfig("HTTPS://idp.example/x")
	cfg.ClientConfig.ClientID = "gw"
	cfg.ClientConfig.AuthMethod = "tls_client_auth"
	cfg.ClientConfig.TLS = TLSConfig{Cert: ca.certPEM, Key: ca.keyPEM}
	if _, err := New(context.Background(), &upstream{}, cfg, "https-capitals@test"); err != nil {
		t.Errorf("tls_client_auth over HTTPS:// refused: %v", err)
	}
}

// TestTemplateFailuresAreTheClients: a header template that fails on a request's own data (a
// missing cookie) logs at DEBUG, while New says once, at ERROR, that the template fails on a plain
// request; a template that renders a plain request gets no such line. A static header sorted before
// the template is there so that the check goes on past it.
func TestTemplateFailuresAreTheClients(t *testing.T) {
	idp := newFakeIDP(t, answerJSON(`{"active":true}`))
	for _, test := range []struct {
		desc, template string
		warn           bool
	}{
		{desc: "a cookie the request may lack", template: `{{ (.Request.Cookie "tenant").Value }}`, warn: true},
		{desc: "the request path", template: `{{ .Request.URL.Path }}`},
	} {
		t.Run(test.desc, func(t *testing.T) {
			name := "template-" + test.desc + "@test"
			var out bytes.Buffer
			var mu sync.Mutex
			var h http.Handler
			withLogger(name, &lockedWriter{mu: &mu, w: &out}, func() {
				cfg := bearerConfig(idp.srv.URL)
				cfg.ClientConfig.Headers = map[string]string{"A-Fixed": "fixed", "X-Tenant": test.template}
				var err error
				if h, err = New(context.Background(), &upstream{}, cfg, name); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 3; i++ {
					req := httptest.NewRequest(http.MethodGet, "/x", nil)
					req.Header.Set("Authorization", "Bearer t")
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
			mu.Lock()
			got := out.String()
			mu.Unlock()
			warned := strings.Contains(got, "clientConfig.headers.X-Tenant: the template fails on a plain GET request")
			if warned != test.warn || strings.Contains(got, "introspection failed") {
				t.Errorf("warned at New %v, want %v; the ERROR log:\n%s", warned, test.warn, got)
			}
		})
	}
}

// TestErrorKindsCannotBeMultiplied: status codes do not make new kinds of ERROR line, and the
// OAuth error code does: a peer that answers every status from 520 to 589 fills one budget, and
// 400 invalid_request leaves 400 invalid_client its own.
func TestErrorKindsCannotBeMultiplied(t *testing.T) {
	var out bytes.Buffer
	l := newLogger("kinds@test")
	l.errs = log.New(&out, "", 0)
	for status := 520; status < 590; status++ {
		logLine(l, "error", fmt.Sprintf("introspection failed: endpoint answered %d (attempts: %d)", status, status%4+1))
	}
	logLine(l, "error", "introspection failed: endpoint answered 400 (invalid_request) (attempts: 1)")
	logLine(l, "error", "introspection failed: endpoint answered 400 (invalid_request) (attempts: 1)")
	logLine(l, "error", "introspection failed: endpoint answered 401 (invalid_client) (attempts: 1)")
	logLine(l, "error", "introspection failed: endpoint answered 400 (invalid_client) (attempts: 1)")
	got := out.String()
	if n := strings.Count(got, "endpoint answered 5"); n != 1 {
		t.Errorf("%d lines for 70 status codes, want 1:\n%s", n, got)
	}
	for _, want := range []string{"400 (invalid_request)", "401 (invalid_client)"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("%q not logged once:\n%s", want, got)
		}
	}
	if len(l.kinds) != 3 {
		t.Errorf("%d kinds, want 3", len(l.kinds))
	}
}

// TestFIFOOpensWithoutWaiting: the open readLimited makes does not wait for a writer, and refuses
// what it opened unless it is a regular file, so a FIFO or a directory swapped in after the Stat
// before it can neither block a request nor be read (a FIFO without a writer reads as empty).
func TestFIFOOpensWithoutWaiting(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{testFIFO(t, dir), dir} {
		done := make(chan error, 1)
		go func(path string) {
			f, _, err := openRegular(path)
			if err == nil {
				f.Close()
			}
			done <- err
		}(path)
		select {
		case err := <-done:
			if err == nil || err.Error() != "not a regular file" {
				t.Errorf("%s: %v, want not a regular file", filepath.Base(path), err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("opening a FIFO waited for a writer")
		}
	}
	f, info, err := openRegular(writeTemp(t, dir, "plain", "content"))
	if err != nil || info.Size() != 7 {
		t.Fatalf("a regular file: %v", err)
	}
	f.Close()
}

// TestNewFileHalfWrittenIsNeverTaken: a writer that removes the file and writes a new one is
// caught halfway as often as one that rewrites it in place: the new file too needs its confirming
// read.
func TestNewFileHalfWrittenIsNeverTaken(t *testing.T) {
	dir := t.TempDir()
	path := writeTemp(t, dir, "secret", "first-secret-value\n")
	w, err := openWatched(path, maxSecretFileBytes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, filepath.Join(dir, "backup")); err != nil { // keeps the old inode in use
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeInPlace(t, path, "new-sec")
	checkNow(w)
	if got := pollFile(w, time.Now()); got != nil {
		t.Fatalf("a new file caught halfway was taken: %q", got)
	}
	writeInPlace(t, path, "new-secret-value\n")
	checkNow(w)
	if got := pollFile(w, time.Now()); got != nil {
		t.Fatalf("a change was taken on its first read: %q", got)
	}
	checkNow(w)
	if got := string(pollFile(w, time.Now())); got != "new-secret-value\n" {
		t.Errorf("after the confirming read: %q", got)
	}
}
