package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrivateKeyFileIsReread rotates the private_key_jwt key file, in place and by a rename: the
// next assertions are signed with the new key. A file that no longer holds a key keeps the last one,
// and the log says so.
func TestPrivateKeyFileIsReread(t *testing.T) {
	testCases := []struct {
		desc    string
		rewrite func(t *testing.T, path, content string)
		polls   int
	}{
		{desc: "in place", rewrite: writeInPlace, polls: 2},
		{desc: "atomic rename", rewrite: writeByRename, polls: 2},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			pem1, key1 := rsaKeyPEM(t)
			pem2, key2 := rsaKeyPEM(t)
			idp := activeIDP(t)
			keyFile := filepath.Join(t.TempDir(), "key.pem")
			writeInPlace(t, keyFile, pem1)
			cfg := bearerConfig(idp.srv.URL)
			cfg.ClientConfig.ClientID = "rs-jwt"
			cfg.ClientConfig.AuthMethod = "private_key_jwt"
			cfg.ClientConfig.PrivateKeyFile = keyFile
			cfg.Cache.TTLSeconds = 0
			h, err := New(context.Background(), &upstream{}, cfg, "keyfile-"+test.desc+"@test")
			if err != nil {
				t.Fatal(err)
			}
			m := h.(*middleware)
			logs := captureLogs(m)
			w := m.idp.auth.key.file
			signedBy := func(key *rsa.PrivateKey) bool {
				t.Helper()
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("Authorization", "Bearer t")
				h.ServeHTTP(httptest.NewRecorder(), req)
				form, _ := idp.lastCall(t)
				ok := true
				checkAssertion(t, form.Get("client_assertion"), "RS256", func(digest, sig []byte) bool {
					ok = rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest, sig) == nil
					return true
				})
				return ok
			}
			if !signedBy(key1) {
				t.Fatal("the first assertion is not signed with the first key")
			}
			test.rewrite(t, keyFile, pem2)
			for n := 0; n < test.polls; n++ {
				checkNow(w)
				if got := signedBy(key2); got != (n == test.polls-1) {
					t.Fatalf("after %d checks: signed with the new key = %v", n+1, got)
				}
			}
			test.rewrite(t, keyFile, "not a key any more\n")
			for n := 0; n < test.polls; n++ {
				checkNow(w)
				if !signedBy(key2) {
					t.Fatalf("a broken key file replaced the last good key")
				}
			}
			if !strings.Contains(logs(), "clientConfig.privateKeyFile: no PEM block found; the last good content stays in use") {
				t.Errorf("the log does not say that the key file is broken:\n%s", logs())
			}
		})
	}
}

// TestTLSFilesAreReread rotates clientConfig.tls.ca, .cert and .key files: the IdP's new
// certificate is trusted once the CA file holds its CA, and the new client certificate is the one
// presented.
func TestTLSFilesAreReread(t *testing.T) {
	ca1, ca2 := newTestCA(t, "ca-one"), newTestCA(t, "ca-two")
	client1, client2 := newTestCA(t, "client-one"), newTestCA(t, "client-two")
	var mu sync.Mutex
	serving := ca1.leaf(t, "127.0.0.1")
	var presented []string
	// A TLS listener of our own: httptest's StartTLS installs its own certificate, which would
	// take precedence over GetCertificate.
	srv := httptest.NewUnstartedServer(activeHandler())
	srv.Listener = tls.NewListener(srv.Listener, &tls.Config{
		ClientAuth: tls.RequireAnyClientCert,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			return &serving, nil
		},
		VerifyPeerCertificate: func(rawCerts [][]byte, chains [][]*x509.Certificate) error {
			cert, err := x509.ParseCertificate(rawCerts[0])
			if err != nil {
				return err
			}
			mu.Lock()
			presented = append(presented, cert.Subject.CommonName)
			mu.Unlock()
			return nil
		},
	})
	srv.Start()
	t.Cleanup(func() { srv.Close() })
	endpoint := "https://" + srv.Listener.Addr().String()

	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeInPlace(t, caFile, ca1.certPEM)
	writeInPlace(t, certFile, client1.certPEM)
	writeInPlace(t, keyFile, client1.keyPEM)
	cfg := bearerConfig(endpoint)
	cfg.ClientConfig.TLS = TLSConfig{CA: caFile, Cert: certFile, Key: keyFile}
	cfg.Cache.TTLSeconds = 0
	// The refused handshakes below are failed introspections: the breaker would open on them and hold the
	// call after the rotation back for openSeconds. This test is about the files alone.
	cfg.ClientConfig.CircuitBreaker.Disabled = true
	h, err := New(context.Background(), &upstream{}, cfg, "tlsfiles@test")
	if err != nil {
		t.Fatal(err)
	}
	tlsFiles := h.(*middleware).idp.tls
	status := func() int {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	lastPresented := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(presented) == 0 {
			return ""
		}
		return presented[len(presented)-1]
	}
	if code := status(); code != http.StatusOK {
		t.Fatalf("with the first CA: status %d", code)
	}
	expectEqual(t, "client certificate", lastPresented(), "client-one")

	mu.Lock()
	serving = ca2.leaf(t, "127.0.0.1")
	mu.Unlock()
	srv.CloseClientConnections()
	if code := status(); code != http.StatusServiceUnavailable {
		t.Fatalf("an IdP certificate from an unknown CA: status %d, want 503", code)
	}
	writeByRename(t, caFile, ca2.certPEM)
	writeByRename(t, certFile, client2.certPEM)
	writeByRename(t, keyFile, client2.keyPEM)
	for round := 0; round < 2; round++ { // the first read sees the change, the second confirms it
		for _, p := range []*pemSource{&tlsFiles.ca, &tlsFiles.cert, &tlsFiles.key} {
			checkNow(p.file)
		}
		if code := status(); round == 0 && code != http.StatusServiceUnavailable {
			t.Fatalf("the change was taken on its first read: status %d", code)
		}
	}
	if code := status(); code != http.StatusOK {
		t.Fatalf("after the CA file was rotated: status %d, want 200", code)
	}
	expectEqual(t, "client certificate after rotation", lastPresented(), "client-two")
}

// TestTLSPairRotatedHalfway: a certificate and key rotated together can be taken one at a time,
// since each waits for its own confirming read. The moment in between (the new certificate with
// the old key) is no ERROR: the old pair stays in use, and the new one is presented once the key
// follows. A mismatch that outlasts a read of every file is logged, once. Requests take turns
// through two routers' handlers and a reload's.
func TestTLSPairRotatedHalfway(t *testing.T) {
	serverCA := newTestCA(t, "server-ca")
	idp := newPeerCertIDP(t, serverCA)
	one, two, three := newTestCA(t, "client-one"), newTestCA(t, "client-two"), newTestCA(t, "client-three")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeInPlace(t, certFile, one.certPEM)
	writeInPlace(t, keyFile, one.keyPEM)
	cfg := bearerConfig(idp.srv.URL + "/introspect")
	cfg.ClientConfig.TLS = TLSConfig{CA: serverCA.certPEM, Cert: certFile, Key: keyFile}
	cfg.Cache.TTLSeconds = 0
	var handlers []http.Handler
	var logs []func() string
	for i := 0; i < 3; i++ { // two routers of one middleware, then a reload
		h, _ := replica(t, "halfway@files", cfg)
		handlers = append(handlers, h)
		logs = append(logs, captureLogs(inner(h)))
	}
	src := inner(handlers[0]).idp.tls
	calls := 0
	presented := func() string {
		t.Helper()
		expectStatus(t, send(handlers[calls%3], bearerRequest(fmt.Sprintf("tok-%d", calls))), http.StatusOK)
		calls++
		seen := idp.seen("/introspect")
		return seen[len(seen)-1]
	}
	readAll := func() {
		for _, f := range src.files {
			checkNow(f.file)
		}
	}
	// A change seen late (requests are sparse) is confirmed after the recheck it would have had
	// without one: only the waiting change, not the time of its next read, keeps the mismatch.
	for _, f := range src.files {
		f.file.mu.Lock()
		f.file.confirm = 2 * f.file.interval
		f.file.mu.Unlock()
	}
	logged := func() int {
		n := 0
		for _, l := range logs {
			n += strings.Count(l(), "error: clientConfig.tls: cert and key: private key does not match public key")
		}
		return n
	}
	expectEqual(t, "the first pair", presented(), "client-one")

	// The certificate comes first: it is taken on its second read, while the key file still
	// holds the old key.
	writeByRename(t, certFile, two.certPEM)
	for round := 0; round < 2; round++ {
		readAll()
		expectEqual(t, "before the key follows", presented(), "client-one")
	}
	src.mu.Lock()
	halfway := src.halfway
	src.mu.Unlock()
	if n := logged(); n != 0 || halfway == "" {
		t.Fatalf("the certificate's change taken on its own: %d mismatches logged, %q kept", n, halfway)
	}
	expectEqual(t, "halfway, files not due", presented(), "client-one")
	writeByRename(t, keyFile, two.keyPEM)
	readAll() // the key's change is seen: every file has been read since, but one change waits
	expectEqual(t, "the key seen once", presented(), "client-one")
	readAll()
	expectEqual(t, "the key taken", presented(), "client-two")
	for round := 0; round < 2; round++ { // the whole pair, read again: nothing is left to log
		readAll()
		expectEqual(t, "after the rotation", presented(), "client-two")
	}
	if n := logged(); n != 0 {
		t.Fatalf("a rotation of the pair logged %d mismatches", n)
	}

	// A certificate whose key never follows.
	writeByRename(t, certFile, three.certPEM)
	for round := 0; round < 2; round++ {
		readAll()
		expectEqual(t, "a certificate without its key", presented(), "client-two")
	}
	if n := logged(); n != 0 {
		t.Fatalf("the mismatch was logged %d times before the key file was read again", n)
	}
	for round := 0; round < 2; round++ {
		readAll()
		expectEqual(t, "the key never followed", presented(), "client-two")
		if n := logged(); n != 1 {
			t.Fatalf("after %d reads of every file, the mismatch was logged %d times, want once", round+1, n)
		}
	}
}

// TestTLSPairHalfwayWithoutNotice: cache.redis.tls has no notice, since its problems are taken on
// every Redis lookup; a mismatch of its pair waits there too, until every file was read again.
func TestTLSPairHalfwayWithoutNotice(t *testing.T) {
	one, two := newTestCA(t, "redis-one"), newTestCA(t, "redis-two")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeInPlace(t, certFile, one.certPEM)
	writeInPlace(t, keyFile, one.keyPEM)
	src, _, err := compileTLS("cache.redis.tls", TLSConfig{Cert: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	poll := func() (rebuilt bool, problems []string) {
		for _, f := range src.files {
			checkNow(f.file)
		}
		now := time.Now()
		if pollTLS(src, now) {
			rebuilt = rebuildTLS(src, now) != nil
		}
		return rebuilt, tlsFileProblems(src)
	}
	writeByRename(t, certFile, two.certPEM)
	for round := 0; round < 2; round++ {
		if rebuilt, problems := poll(); rebuilt || len(problems) != 0 {
			t.Fatalf("read %d of a certificate without its key: rebuilt %v, problems %q", round+1, rebuilt, problems)
		}
	}
	_, problems := poll()
	expectEqual(t, "once every file was read again", strings.Join(problems, "|"),
		"cache.redis.tls: cert and key: private key does not match public key")
	if _, problems := poll(); len(problems) != 0 {
		t.Errorf("taken twice: %q", problems)
	}
}

// TestWatchedFileAfterSameContentRename: a rename that brings the same content changes which file
// later writes are told from, so an in-place write after it still needs its confirming read.
func TestWatchedFileAfterSameContentRename(t *testing.T) {
	path := writeTemp(t, t.TempDir(), "secret", "full-secret-value\n")
	w, err := openWatched(path, maxSecretFileBytes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeByRename(t, path, "full-secret-value\n")
	checkNow(w)
	if got := pollFile(w, time.Now()); got != nil {
		t.Fatalf("the same content was taken as a change")
	}
	writeInPlace(t, path, "new-sec")
	checkNow(w)
	if got := pollFile(w, time.Now()); got != nil {
		t.Errorf("an in-place write %q was taken without its confirming read", got)
	}
	checkNow(w)
	if got := string(pollFile(w, time.Now())); got != "new-sec" {
		t.Errorf("after the confirming read: %q, want the new content", got)
	}
}
