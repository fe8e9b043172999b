package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTLSTrust(t *testing.T) {
	srv := httptest.NewTLSServer(activeHandler())
	defer srv.Close()
	caPEM := pemOf("CERTIFICATE", srv.Certificate().Raw)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	testCases := []struct {
		desc string
		tls  TLSConfig
		want int
	}{
		{desc: "unknown CA fails closed", want: http.StatusServiceUnavailable},
		{desc: "CA as PEM content", tls: TLSConfig{CA: caPEM}, want: http.StatusOK},
		{desc: "CA as a file path", tls: TLSConfig{CA: caFile}, want: http.StatusOK},
		{desc: "insecureSkipVerify", tls: TLSConfig{InsecureSkipVerify: true}, want: http.StatusOK},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			cfg := bearerConfig(srv.URL)
			cfg.ClientConfig.TLS = test.tls
			rec, _ := serveOne(t, cfg, "t")
			if rec.Code != test.want {
				t.Errorf("status = %d, want %d", rec.Code, test.want)
			}
		})
	}
}

func TestTLSClientCertificate(t *testing.T) {
	certPEM, keyPEM, cert := selfSigned(t, "gateway")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	srv := httptest.NewUnstartedServer(activeHandler())
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()

	cfg := bearerConfig(srv.URL)
	cfg.ClientConfig.TLS = TLSConfig{InsecureSkipVerify: true}
	if rec, _ := serveOne(t, cfg, "t"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("without a client certificate: status = %d, want 503", rec.Code)
	}
	cfg.ClientConfig.TLS = TLSConfig{InsecureSkipVerify: true, Cert: certPEM, Key: keyPEM}
	if rec, _ := serveOne(t, cfg, "t"); rec.Code != http.StatusOK {
		t.Errorf("with the client certificate: status = %d, want 200", rec.Code)
	}
	cfg.ClientConfig.TLS = TLSConfig{Cert: certPEM, Key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}
	if _, err := New(context.Background(), &upstream{}, cfg, "bad@test"); err == nil {
		t.Errorf("New accepted a key that does not match the certificate")
	}
}

// TestTimeoutBoundsTheWholeCall proves that a hanging IdP costs at most timeoutSeconds, retries
// included, and fails closed.
func TestTimeoutBoundsTheWholeCall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := bearerConfig(srv.URL)
	start := time.Now()
	rec, up := serveOne(t, cfg, "t")
	elapsed := time.Since(start)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	if _, hits := up.seen(); hits != 0 {
		t.Errorf("the request reached the upstream")
	}
	if elapsed < 900*time.Millisecond || elapsed > 1800*time.Millisecond {
		t.Errorf("took %v, want about the 1 s timeout", elapsed)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	cfg := bearerConfig("http://" + addr + "/introspect")
	cfg.ClientConfig.MaxRetries = 2
	start := time.Now()
	rec, _ := serveOne(t, cfg, "t")
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rec.Code)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v; retries of a refused connection should be quick", elapsed)
	}
}

// TestConcurrentRequests drives one handler from many goroutines (run with -race).
func TestConcurrentRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("token") == "good" {
			_, _ = io.WriteString(w, `{"active":true,"grp":"admin"}`)
			return
		}
		_, _ = io.WriteString(w, `{"active":false}`)
	}))
	defer srv.Close()
	cfg := bearerConfig(srv.URL)
	cfg.ForwardHeaders = map[string]string{"Group": "grp"}
	up := &upstream{}
	h, err := New(context.Background(), up, cfg, "concurrent@test")
	if err != nil {
		t.Fatal(err)
	}
	call := func(i int) int {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		tok := "bad"
		if i%2 == 0 {
			tok = "good"
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	// Yaegi v0.16.1 builds some reflect types lazily on first use without a lock, which the race
	// detector reports. Traefik serves a few requests before concurrency too; warm up every path
	// (a miss and a cache hit for each token).
	call(0)
	call(0)
	call(1)
	call(1)
	var wg sync.WaitGroup
	codes := make([]int, 40)
	// One worker closure for all goroutines: Yaegi v0.16.1 races when a loop builds a new closure
	// while goroutines started from earlier ones finish.
	worker := func(i int) {
		defer wg.Done()
		codes[i] = call(i)
	}
	for i := 0; i < len(codes); i++ {
		wg.Add(1)
		go worker(i)
	}
	wg.Wait()
	for i, code := range codes {
		want := http.StatusUnauthorized
		if i%2 == 0 {
			want = http.StatusOK
		}
		if code != want {
			t.Errorf("request %d: status = %d, want %d", i, code, want)
		}
	}
	if _, hits := up.seen(); hits != len(codes)/2+2 {
		t.Errorf("upstream hits = %d, want %d", hits, len(codes)/2+2)
	}
}

func TestNewRejectsMissingArguments(t *testing.T) {
	if _, err := New(context.Background(), &upstream{}, nil, "nil@test"); err == nil {
		t.Errorf("New accepted a nil config")
	}
	if _, err := New(context.Background(), nil, bearerConfig("http://127.0.0.1:1/"), "nonext@test"); err == nil {
		t.Errorf("New accepted a nil next handler")
	}
}

// TestBackoff checks the retry waits: 50 ms doubled at each retry, jittered within its upper half.
func TestBackoff(t *testing.T) {
	for try := 0; try < 4; try++ {
		base := 50 * time.Millisecond << uint(try)
		for i := 0; i < 50; i++ {
			if d := backoff(try); d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want between %v and %v", try, d, base/2, base)
			}
		}
	}
}

// TestTransportErrorsAreLoggedByKind: what an endpoint sends back never reaches the log, since net/http
// and crypto/x509 quote it in their errors. A malformed status line, a malformed header and a
// certificate whose names hold a line break each give a log line that names the kind of failure
// and nothing of what the peer sent.
func TestTransportErrorsAreLoggedByKind(t *testing.T) {
	const marker = "tok-marker-FORGED"
	testCases := []struct {
		desc string
		peer func(t *testing.T) (string, TLSConfig) // the endpoint's URL and the TLS options to reach it
		want string
	}{
		{desc: "malformed status line", peer: rawPeer("HTTP/1.1 2x0 " + marker + "\r\n\r\n"), want: "request failed: protocol error: malformed response"},
		{desc: "malformed header", peer: rawPeer("HTTP/1.1 200 OK\r\nBad Header " + marker + "\r\n\r\n"), want: "request failed: protocol error: malformed response"},
		{desc: "certificate names with a line break", peer: func(t *testing.T) (string, TLSConfig) {
			ca := newTestCA(t, "names")
			leaf := ca.leaf(t, "", "evil\n"+marker+", not localhost\x1b[2J")
			srv := httptest.NewUnstartedServer(activeHandler())
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}
			srv.StartTLS()
			t.Cleanup(func() { srv.Close() })
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			return "https://localhost:" + port, TLSConfig{CA: ca.certPEM}
		}, want: "request failed: TLS: the certificate does not match the host"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			endpoint, tlsOptions := test.peer(t)
			cfg := bearerConfig(endpoint)
			cfg.ClientConfig.MaxRetries = 0
			cfg.ClientConfig.TLS = tlsOptions
			h, err := New(context.Background(), &upstream{}, cfg, "transport-"+test.desc+"@test")
			if err != nil {
				t.Fatal(err)
			}
			logs := captureLogs(h.(*middleware))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Authorization", "Bearer t")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			expectStatus(t, rec, http.StatusServiceUnavailable)
			out := logs()
			if !strings.Contains(out, test.want) {
				t.Errorf("the log does not name the kind %q:\n%s", test.want, out)
			}
			for _, leak := range []string{marker, "2x0", "Bad Header", "evil", "\x1b"} {
				if strings.Contains(out, leak) {
					t.Errorf("the log holds %q, sent by the peer:\n%s", leak, out)
				}
			}
			if n := strings.Count(out, "\n"); n != 2 {
				t.Errorf("%d log lines, want 2 (the failure and the denial):\n%s", n, out)
			}
		})
	}
}

// rawPeer makes a peer that listens on loopback and answers every connection with response, then
// closes it.
func rawPeer(response string) func(t *testing.T) (string, TLSConfig) {
	return func(t *testing.T) (string, TLSConfig) {
		return rawPeerURL(t, response), TLSConfig{}
	}
}

// rawPeerURL starts a raw peer (see rawPeer) and returns the URL of an endpoint there.
func rawPeerURL(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 4096)
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, response)
			}(conn)
		}
	}()
	return "http://" + ln.Addr().String() + "/introspect"
}
