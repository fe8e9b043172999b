package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// What the revocation relay lends the callers of revocation.path, and what it may cost the IdP:
// never the gateway's client certificate, and never more than maxInFlight revocations at once.

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peerCertIDP is an IdP over TLS that asks for a client certificate, and records, per path, the
// common name of the one each request presented ("" for none).
type peerCertIDP struct {
	srv *httptest.Server
	mu  sync.Mutex
	cn  map[string][]string
}

func newPeerCertIDP(t *testing.T, ca *testCA) *peerCertIDP {
	f := &peerCertIDP{cn: map[string][]string{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		f.mu.Lock()
		f.cn[r.URL.Path] = append(f.cn[r.URL.Path], cn)
		f.mu.Unlock()
		if r.URL.Path == "/introspect" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"active":true,"sub":"s"}`))
		}
	}))
	f.srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, Certificates: []tls.Certificate{ca.leaf(t, "127.0.0.1")}}
	f.srv.StartTLS()
	t.Cleanup(func() { f.srv.Close() })
	return f
}

func (f *peerCertIDP) seen(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cn[path]...)
}

// TestRevocationRelayPresentsNoClientCertificate: with authMethod tls_client_auth the gateway's
// certificate is its client identity (RFC 8705); introspections present it, revocations relayed
// for anyone who reaches revocation.path never do. The relay still verifies the IdP with
// clientConfig.tls.ca: an IdP whose certificate another CA signed is a 503.
func TestRevocationRelayPresentsNoClientCertificate(t *testing.T) {
	serverCA := newTestCA(t, "server-ca")
	idp := newPeerCertIDP(t, serverCA)
	gateway := newTestCA(t, "gateway")
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.ClientConfig.ClientID = "gateway"
	cfg.ClientConfig.AuthMethod = "tls_client_auth"
	cfg.ClientConfig.TLS = TLSConfig{CA: serverCA.certPEM, Cert: gateway.certPEM, Key: gateway.keyPEM}
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
	h1, _ := replica(t, "mtls@relay", cfg)
	h2, _ := replica(t, "mtls@relay", cfg) // another router of the same middleware

	expectStatus(t, send(h1, bearerRequest("tok-mtls")), http.StatusOK)
	expectStatus(t, revokeThrough(h2, "tok-mtls", ""), http.StatusOK)
	expectStatus(t, revokeThrough(h1, "tok-mtls", ""), http.StatusOK)
	if got := strings.Join(idp.seen("/introspect"), ","); got != "gateway" {
		t.Errorf("introspections presented %q, want the gateway's certificate", got)
	}
	if got := idp.seen("/revoke"); len(got) != 2 || got[0] != "" || got[1] != "" {
		t.Errorf("relayed revocations presented %q, want no certificate twice", got)
	}

	other := newPeerCertIDP(t, newTestCA(t, "other-ca"))
	cfg.Revocation.URL = other.srv.URL + "/revoke"
	h3, _ := replica(t, "mtls-other@relay", cfg)
	expectStatus(t, revokeThrough(h3, "tok-mtls", ""), http.StatusServiceUnavailable)
	if got := other.seen("/revoke"); len(got) != 0 {
		t.Errorf("the relay sent a revocation to an IdP it cannot verify")
	}
}

// TestRevocationsInFlightBounded: at most maxInFlight revocations are relayed at once for one
// middleware, over all its handlers and a second New with the same configuration; one more waits
// inFlightWaitMilliseconds and gets a 503 with Retry-After. They have slots of their own: a token
// is introspected meanwhile. When they end their slots are free again.
func TestRevocationsInFlightBounded(t *testing.T) {
	release := make(chan struct{})
	var held, most atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/revoke" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"active":true,"sub":"s"}`))
			return
		}
		n := held.Add(1)
		defer held.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		firstReady(release, r.Context().Done())
	}))
	released := false
	t.Cleanup(func() {
		if !released {
			close(release)
		}
		srv.Close()
	})
	cfg := bearerConfig(srv.URL + "/introspect")
	cfg.ClientConfig.TimeoutSeconds = 10
	cfg.ClientConfig.MaxInFlight = 2
	cfg.ClientConfig.InFlightWaitMilliseconds = 50
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: srv.URL + "/revoke"}
	h1, _ := replica(t, "bounded@relay", cfg)
	h2, _ := replica(t, "bounded@relay", cfg)

	var codes [2]atomic.Int32
	for i, h := range []http.Handler{h1, h2} {
		i, h := i, h
		go func() { codes[i].Store(int32(revokeThrough(h, "tok-held", "").Code)) }()
	}
	waitFor(t, 5*time.Second, "the IdP to hold two revocations", func() bool { return held.Load() == 2 })
	reloaded, _ := replica(t, "bounded@relay", cfg) // a second New with the same configuration
	rec := revokeThrough(reloaded, "tok-third", "")
	expectStatus(t, rec, http.StatusServiceUnavailable)
	expectEqual(t, "Retry-After", rec.Header().Get("Retry-After"), "1")
	expectStatus(t, send(h2, bearerRequest("tok-meanwhile")), http.StatusOK)

	close(release)
	released = true
	waitFor(t, 5*time.Second, "the held revocations to end", func() bool { return codes[0].Load() != 0 && codes[1].Load() != 0 })
	for i := range codes {
		if code := codes[i].Load(); code != http.StatusOK {
			t.Errorf("held revocation %d: %d, want 200", i, code)
		}
	}
	expectStatus(t, revokeThrough(h2, "tok-after", ""), http.StatusOK)
	if n := most.Load(); n != 2 {
		t.Errorf("the IdP held %d revocations at once, want 2", n)
	}
}

// TestRevocationRelayBesideFirstIntrospection: the first introspection and the first relayed
// revocation of a middleware over TLS run at once, both answered. Under -race this holds the
// relay to a TLS configuration of its own: a transport writes to its configuration on first use.
func TestRevocationRelayBesideFirstIntrospection(t *testing.T) {
	serverCA := newTestCA(t, "server-ca")
	idp := newPeerCertIDP(t, serverCA)
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.ClientConfig.TLS = TLSConfig{CA: serverCA.certPEM}
	cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
	for i := 0; i < 20; i++ {
		h, _ := replica(t, "beside-"+time.Now().Format("150405.000000")+"@relay", cfg)
		var introspected, revoked atomic.Int32
		start := make(chan struct{})
		go func() { <-start; introspected.Store(int32(send(h, bearerRequest("tok-beside")).Code)) }()
		go func() { <-start; revoked.Store(int32(revokeThrough(h, "tok-beside", "").Code)) }()
		close(start)
		waitFor(t, 5*time.Second, "both calls to be answered", func() bool { return introspected.Load() != 0 && revoked.Load() != 0 })
		if introspected.Load() != http.StatusOK || revoked.Load() != http.StatusOK {
			t.Fatalf("round %d: introspection %d, revocation %d; want 200 and 200", i, introspected.Load(), revoked.Load())
		}
	}
}

// TestRevocationOneTokenPerRequest: a revocation names one token (RFC 7009 section 2.1; RFC 6749
// section 3.1 forbids a parameter twice). A body with two is refused before the IdP hears of it,
// so no request can make the plugin write thousands of markers; nothing is forgotten.
func TestRevocationOneTokenPerRequest(t *testing.T) {
	fake := startFakeRedis(t, map[string]string{"MGET": "*2\r\n$-1\r\n$-1\r\n"})
	idp := newRevocableIDP(t)
	cfg := sharedConfig(idp, fake.ln.Addr().String(), nil)
	h1, up := replica(t, "one-token@relay", cfg)
	h2, _ := replica(t, "one-token@relay", cfg)
	expectStatus(t, send(h1, bearerRequest("tok-one")), http.StatusOK)
	sets := fake.count("SET")

	for _, body := range []string{"token=tok-one&token=tok-two", "token=tok-one&token=tok-one", "token=&token=tok-one"} {
		req := httptest.NewRequest(http.MethodPost, "/revoke", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", rsBasic)
		rec := send(h2, req)
		expectStatus(t, rec, http.StatusBadRequest)
		expectEqual(t, body+": Content-Type", rec.Header().Get("Content-Type"), "application/json")
		if !strings.Contains(rec.Body.String(), `"error":"invalid_request"`) {
			t.Errorf("%s: body %q, want an RFC 6749 invalid_request error", body, rec.Body.String())
		}
	}
	idp.mu.Lock()
	relayed := len(idp.revoked)
	idp.mu.Unlock()
	if relayed != 0 {
		t.Errorf("the IdP revoked %d tokens of refused requests", relayed)
	}
	if n := fake.count("SET"); n != sets {
		t.Errorf("refused revocations wrote %d markers", n-sets)
	}
	up.reset()
	expectStatus(t, send(h1, bearerRequest("tok-one")), http.StatusOK) // still cached: nothing was forgotten
	if req, _ := up.seen(); req == nil || req.Header.Get("Subject") != "tok-one" {
		t.Fatal("the token was not forwarded after the refused revocations")
	}

	expectStatus(t, revokeThrough(h2, "tok-one", rsBasic), http.StatusOK)
	if n := fake.count("SET"); n != sets+1 {
		t.Errorf("one revocation wrote %d markers, want 1", n-sets)
	}
}

// TestRevocationSlotHeldWhileMarking: a revocation keeps its slot until its token is forgotten,
// Redis markers included, so a Redis that hangs cannot gather more than maxInFlight revocations'
// writes, over all handlers of the middleware and a second New.
func TestRevocationSlotHeldWhileMarking(t *testing.T) {
	fake := startHoldingRedis(t, map[string]string{"MGET": "*2\r\n$-1\r\n$-1\r\n"}, "SET")
	idp := newRevocableIDP(t)
	cfg := sharedConfig(idp, fake.ln.Addr().String(), func(c *Config) {
		c.Cache.Redis.TimeoutMilliseconds = 5000
		c.ClientConfig.MaxInFlight = 1
		c.ClientConfig.InFlightWaitMilliseconds = 50
	})
	h1, _ := replica(t, "marking@relay", cfg)
	h2, _ := replica(t, "marking@relay", cfg)
	var first atomic.Int32
	go func() { first.Store(int32(revokeThrough(h1, "tok-a", rsBasic).Code)) }()
	waitFor(t, 5*time.Second, "the first revocation's marker write", func() bool { return fake.count("SET") == 1 })

	reloaded, _ := replica(t, "marking@relay", cfg) // a second New with the same configuration
	for name, h := range map[string]http.Handler{"second handler": h2, "second New": reloaded} {
		rec := revokeThrough(h, "tok-b", rsBasic)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%s, while a revocation writes its marker: %d (Retry-After %q), want 503 and 1", name, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	if n := fake.count("SET"); n != 1 {
		t.Errorf("%d markers written at once with maxInFlight 1", n)
	}
	fake.release()
	waitFor(t, 5*time.Second, "the first revocation to end", func() bool { return first.Load() != 0 })
	if code := first.Load(); code != http.StatusOK {
		t.Errorf("the first revocation: %d, want 200", code)
	}
	expectStatus(t, revokeThrough(h2, "tok-b", rsBasic), http.StatusOK)
}
