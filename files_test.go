package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
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
// through the handlers of three News with one name and configuration, as Traefik builds for two
// routers and a reload: they share the files.
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
	for i := 0; i < 3; i++ {
		h, _ := replica(t, "halfway@files", cfg)
		handlers = append(handlers, h)
		logs = append(logs, captureLogs(inner(h)))
	}
	src := inner(handlers[0]).idp.tls
	if inner(handlers[1]).idp.tls != src || inner(handlers[2]).idp.tls != src {
		t.Fatal("a New with the same name and configuration has TLS files of its own")
	}
	cert, key := src.cert.file, src.key.file
	calls := 0
	presented := func() string {
		t.Helper()
		expectStatus(t, send(handlers[calls%3], bearerRequest(fmt.Sprintf("tok-%d", calls))), http.StatusOK)
		calls++
		seen := idp.seen("/introspect")
		return seen[len(seen)-1]
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
		checkNow(cert)
		checkNow(key)
		expectEqual(t, "before the key follows", presented(), "client-one")
	}
	src.mu.Lock()
	halfway := src.halfway
	src.mu.Unlock()
	if n := logged(); n != 0 || halfway == "" {
		t.Fatalf("the certificate's change taken on its own: %d mismatches logged, %q kept", n, halfway)
	}
	notDue(cert)
	notDue(key)
	expectEqual(t, "halfway, no file read", presented(), "client-one")
	writeByRename(t, keyFile, two.keyPEM)
	checkNow(key)
	checkNow(cert) // every file has been read since, but the key's change waits
	expectEqual(t, "the key seen once", presented(), "client-one")
	checkNow(key)
	expectEqual(t, "the key taken", presented(), "client-two")
	for round := 0; round < 2; round++ { // the whole pair, read again: nothing is left to log
		checkNow(cert)
		checkNow(key)
		expectEqual(t, "after the rotation", presented(), "client-two")
	}
	if n := logged(); n != 0 {
		t.Fatalf("a rotation of the pair logged %d mismatches", n)
	}

	// A certificate whose key never follows: logged once both files have been read again.
	writeByRename(t, certFile, three.certPEM)
	for round := 0; round < 2; round++ {
		checkNow(cert)
		expectEqual(t, "a certificate without its key", presented(), "client-two")
	}
	checkNow(key)
	expectEqual(t, "the key read again, not the certificate", presented(), "client-two")
	if n := logged(); n != 0 {
		t.Fatalf("the mismatch was logged %d times before the certificate was read again", n)
	}
	for round := 0; round < 2; round++ {
		checkNow(cert)
		expectEqual(t, "the key never followed", presented(), "client-two")
		if n := logged(); n != 1 {
			t.Fatalf("after %d more reads, the mismatch was logged %d times, want once", round+1, n)
		}
	}
}

// notDue puts w's next read an hour away.
func notDue(w *watchedFile) {
	w.mu.Lock()
	w.nextCheck = time.Now().Add(time.Hour)
	w.mu.Unlock()
}

// TestTLSPairHalfwayEdges drives a TLS source on its own, as cache.redis.tls's is (it has no
// notice: its problems are taken on every Redis lookup): a pair rotated to another key type, a
// mismatch that another problem overtakes, one whose other half becomes unreadable, one whose
// certificate changes again, one taken while the key's taker has yet to rebuild, and a taker
// that read a mismatch since replaced.
func TestTLSPairHalfwayEdges(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ca, one, two, three := newTestCA(t, "ca"), newTestCA(t, "one"), newTestCA(t, "two"), newTestCA(t, "three")
	rsaCert, rsaKey := rsaPairPEM(t, "rsa")
	writeInPlace(t, caFile, ca.certPEM)
	writeInPlace(t, certFile, rsaCert)
	writeInPlace(t, keyFile, rsaKey)
	src, _, err := compileTLS("cache.redis.tls", TLSConfig{CA: caFile, Cert: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	// poll reads the files named (all when none is) as the next request would, a second after
	// the last, and returns whether the configuration was rebuilt and the problems taken.
	clock := time.Now()
	poll := func(files ...*watchedFile) (rebuilt bool, problems string) {
		if len(files) == 0 {
			files = []*watchedFile{src.ca.file, src.cert.file, src.key.file}
		}
		for _, f := range files {
			checkNow(f)
		}
		clock = clock.Add(time.Second)
		now := clock
		if pollTLS(src, now) {
			rebuilt = rebuildTLS(src, now) != nil
		}
		return rebuilt, strings.Join(tlsFileProblems(src), " | ")
	}
	expect := func(step string, rebuilt bool, problems string, wantRebuilt bool, want string) {
		t.Helper()
		if rebuilt != wantRebuilt || problems != want {
			t.Fatalf("%s: rebuilt %v, problems %q; want %v, %q", step, rebuilt, problems, wantRebuilt, want)
		}
	}
	const mismatch = "cache.redis.tls: cert and key: private key does not match public key"

	// From RSA to ECDSA, a file at a time.
	writeByRename(t, certFile, one.certPEM)
	for round := 0; round < 2; round++ {
		r, p := poll()
		expect("an ECDSA certificate with the RSA key", r, p, false, "")
	}
	writeByRename(t, keyFile, one.keyPEM)
	r, p := poll()
	expect("the ECDSA key seen", r, p, false, "")
	r, p = poll()
	expect("the ECDSA key taken", r, p, true, "")

	// A mismatch waits; a broken CA stops the next build before the pair, and drops it.
	writeByRename(t, certFile, two.certPEM)
	for round := 0; round < 2; round++ {
		r, p = poll()
		expect("a certificate without its key", r, p, false, "")
	}
	writeByRename(t, keyFile, two.keyPEM)
	writeByRename(t, caFile, "no certificate here\n")
	r, p = poll()
	expect("the key and the CA seen", r, p, false, "")
	r, p = poll()
	expect("the key and the CA taken", r, p, false, "cache.redis.tls.ca: no PEM certificate found")
	for round := 0; round < 2; round++ {
		r, p = poll()
		expect("the CA still broken, the pair whole", r, p, false, "")
	}
	writeByRename(t, caFile, ca.certPEM)
	poll()
	r, p = poll()
	expect("the CA mended", r, p, true, "")

	// A mismatch waits; the key's change is seen, then the key file vanishes. The change is
	// forgotten, and the mismatch outlasts a read of every file.
	writeByRename(t, certFile, three.certPEM)
	poll(src.cert.file)
	r, p = poll(src.cert.file)
	expect("a certificate without its key, again", r, p, false, "")
	writeByRename(t, keyFile, rsaKey)
	r, p = poll(src.key.file, src.ca.file)
	expect("a new key seen once", r, p, false, "")
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	r, p = poll(src.key.file, src.cert.file)
	expect("the key file gone", r, p, false, mismatch+" | cache.redis.tls.key: no such file")
	r, p = poll()
	expect("taken once", r, p, false, "cache.redis.tls.key: no such file")

	// A mismatch waits, and the certificate changes again to one the key does not match either:
	// the mismatch keeps its time, so files read since the first count.
	writeInPlace(t, keyFile, three.keyPEM)
	poll()
	r, p = poll()
	expect("the pair whole again", r, p, true, "")
	writeByRename(t, certFile, one.certPEM)
	poll(src.cert.file)
	poll(src.cert.file)
	r, p = poll(src.ca.file, src.key.file)
	expect("the key and the CA read since", r, p, false, "")
	writeByRename(t, certFile, two.certPEM)
	r, p = poll(src.cert.file)
	expect("another certificate seen", r, p, false, "")
	r, p = poll(src.cert.file)
	expect("another certificate taken", r, p, false, mismatch)

	// A mismatch waits; the key's change is taken by one request, and another takes the
	// problems before the first has rebuilt: the key no longer holds what the failed build was
	// made of, so the mismatch waits for that rebuild, which drops it.
	writeByRename(t, certFile, one.certPEM)
	poll(src.cert.file)
	poll(src.cert.file)
	writeByRename(t, keyFile, one.keyPEM)
	r, p = poll(src.ca.file, src.cert.file, src.key.file)
	expect("the key seen once, the others read", r, p, false, "")
	checkNow(src.key.file)
	clock = clock.Add(time.Second)
	if pollFile(src.key.file, clock) == nil {
		t.Fatal("the key's change was not taken")
	}
	if p := tlsFileProblems(src); len(p) != 0 {
		t.Fatalf("taken before the rebuild of the whole pair: %q", p)
	}
	if rebuildTLS(src, clock) == nil {
		t.Fatal("the whole pair did not make a configuration")
	}
	r, p = poll()
	expect("after the rebuild", r, p, false, "")

	// A taker that read a mismatch, which another logged and which was then found again, takes
	// nothing: the one that waits now is another, not yet outlasted.
	writeByRename(t, certFile, two.certPEM)
	poll(src.cert.file)
	poll(src.cert.file)
	src.mu.Lock()
	stale, staleAt, staleOf := src.halfway, src.halfwayAt, src.halfwayOf
	src.halfwayAt = clock.Add(time.Hour) // found again later, by a build of the same files
	src.mu.Unlock()
	poll()
	if got := takeHalfway(src, nil, stale, staleAt, staleOf); len(got) != 0 {
		t.Errorf("a stale taker took the mismatch that waits now: %q", got)
	}
}

// rsaPairPEM returns a self-signed RSA certificate for cn and its key, in PEM.
func rsaPairPEM(t *testing.T, cn string) (certPEM, keyPEM string) {
	t.Helper()
	keyPEM, key := rsaKeyPEM(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("CERTIFICATE", der), keyPEM
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
