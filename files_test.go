package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
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
