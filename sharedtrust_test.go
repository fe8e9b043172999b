package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// What the shared tier trusts: an answer in Redis is only as good as the connection it came over,
// to the IdP and to Redis.

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSharedTierKeepsEndpointTrustApart: a configuration that does not verify the IdP (or trusts
// another CA) stores what any server at the address answered. A configuration of the same
// endpoint that verifies it must never read that answer, on any of its handlers.
func TestSharedTierKeepsEndpointTrustApart(t *testing.T) {
	srv := startRedis(t)
	realCA := newTestCA(t, "idp-ca")
	impostorCA := newTestCA(t, "impostor-ca")
	impostor := newTLSFakeIDP(t, &tls.Config{Certificates: []tls.Certificate{impostorCA.leaf(t, "127.0.0.1")}},
		answerJSON(`{"active":true,"grp":"admin","sub":"mallory"}`))
	idp := newRevocableIDP(t)
	trusting := func(tune func(*TLSConfig)) *Config {
		return sharedConfig(idp, srv.addr, func(c *Config) {
			c.ClientConfig.URL = impostor.srv.URL + "/introspect"
			c.ClientConfig.CircuitBreaker.Disabled = true
			c.Revocation = RevocationConfig{}
			tune(&c.ClientConfig.TLS)
		})
	}
	strictConfig := trusting(func(tc *TLSConfig) { tc.CA = realCA.certPEM })
	strict, strictUp := replica(t, "strict@trust", strictConfig)
	lax, _ := replica(t, "lax@trust", trusting(func(tc *TLSConfig) { tc.InsecureSkipVerify = true }))
	other, _ := replica(t, "other-ca@trust", trusting(func(tc *TLSConfig) { tc.CA = impostorCA.certPEM }))

	expectStatus(t, send(lax, bearerRequest("forged-1")), http.StatusOK)
	expectStatus(t, send(other, bearerRequest("forged-2")), http.StatusOK)
	again, againUp := replica(t, "strict@trust", strictConfig) // a second router, or a reload
	if inner(again).cache != inner(strict).cache {
		t.Fatal("a second New with the same configuration did not share the state")
	}
	for _, h := range []struct {
		name string
		h    http.Handler
		up   *upstream
	}{{"first handler", strict, strictUp}, {"second handler", again, againUp}} {
		for _, token := range []string{"forged-1", "forged-2"} {
			expectStatus(t, send(h.h, bearerRequest(token)), http.StatusServiceUnavailable)
			if req, _ := h.up.seen(); req != nil {
				t.Fatalf("%s forwarded %s (Subject %q), an answer only an unverified IdP gave", h.name, token, req.Header.Get("Subject"))
			}
		}
	}

	// What names the trust: its absence, no verification, an inline CA by content, a CA file
	// by path. Equal trust shares a prefix.
	digest := func(tc TLSConfig) string {
		k := &clientSettings{endpoint: "https://idp.test/introspect"}
		var err error
		if k.tls, _, err = compileTLS("clientConfig.tls", tc); err != nil {
			t.Fatal(err)
		}
		return answerDigest(k, 60)
	}
	caFile := writeTemp(t, t.TempDir(), "ca.pem", realCA.certPEM)
	seen := map[string]string{}
	for name, tc := range map[string]TLSConfig{
		"system roots": {}, "no verification": {InsecureSkipVerify: true},
		"inline CA": {CA: realCA.certPEM}, "other inline CA": {CA: impostorCA.certPEM}, "CA file": {CA: caFile},
	} {
		d := digest(tc)
		if d != digest(tc) {
			t.Errorf("%s: two digests of one trust differ", name)
		}
		if prev, dup := seen[d]; dup {
			t.Errorf("%s and %s share a prefix", name, prev)
		}
		seen[d] = name
	}
}

// TestRedisTLSFilesRotate: the files of cache.redis.tls are re-read as clientConfig.tls's are. A CA
// taken out of its file stops being trusted, on pooled connections too, for every handler, a
// second New and a changed configuration on the same Redis; a rotated client certificate is the
// one presented.
func TestRedisTLSFilesRotate(t *testing.T) {
	oldCA, newCA := newTestCA(t, "old-redis-ca"), newTestCA(t, "new-redis-ca")
	one, two := newTestCA(t, "client-one"), newTestCA(t, "client-two")
	dir := t.TempDir()
	caFile := writeTemp(t, dir, "ca.pem", oldCA.certPEM)
	certFile := writeTemp(t, dir, "client.pem", one.certPEM)
	keyFile := writeTemp(t, dir, "client.key", one.keyPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{oldCA.leaf(t, "127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	// Whatever the key, this Redis answers with an entry that no IdP gave.
	entry := "v1 " + strconv.FormatInt(time.Now().UnixNano(), 10) + ` {"active":true,"grp":"admin","sub":"mallory"}`
	serveFakeRedis(t, ln, map[string]string{"MGET": "*2\r\n$" + strconv.Itoa(len(entry)) + "\r\n" + entry + "\r\n$-1\r\n"}, "")
	idp := newRevocableIDP(t)
	withTLS := func(prefix string) *Config {
		return sharedConfig(idp, ln.Addr().String(), func(c *Config) {
			c.Cache.Redis.TLS = TLSConfig{CA: caFile, Cert: certFile, Key: keyFile}
			c.Cache.Redis.KeyPrefix = prefix
		})
	}
	h1, up := replica(t, "rotate@redis-tls", withTLS(""))
	h2, _ := replica(t, "rotate@redis-tls", withTLS(""))
	expectStatus(t, send(h1, bearerRequest("bogus-1")), http.StatusOK) // the CA in the file is trusted
	if req, _ := up.seen(); req == nil || req.Header.Get("Subject") != "mallory" {
		t.Fatal("the entry of the trusted Redis was not used")
	}

	rc := inner(h1).settings.shared.client
	writeByRename(t, caFile, newCA.certPEM)
	writeByRename(t, certFile, two.certPEM)
	writeByRename(t, keyFile, two.keyPEM)
	for round := 0; round < 2; round++ { // the first read sees the change, the second confirms it
		for _, p := range []*pemSource{&rc.tlsFiles.ca, &rc.tlsFiles.cert, &rc.tlsFiles.key} {
			checkNow(p.file)
		}
		token := "bogus-round-" + strconv.Itoa(round)
		if code := send(h2, bearerRequest(token)).Code; round == 0 && code != http.StatusOK {
			t.Fatalf("the change was taken on its first read: status %d", code)
		} else if round == 1 && code != http.StatusUnauthorized {
			t.Fatalf("once the CA was taken out of its file: status %d, want 401 from the IdP", code)
		}
	}
	reloaded, reloadedUp := replica(t, "rotate@redis-tls", withTLS(""))
	changed, changedUp := replica(t, "rotate@redis-tls", withTLS("changed:"))
	for name, h := range map[string]http.Handler{"first handler": h1, "second New": reloaded, "changed configuration": changed} {
		expectStatus(t, send(h, bearerRequest("bogus-after-"+name)), http.StatusUnauthorized)
	}
	for _, u := range []*upstream{reloadedUp, changedUp} {
		if req, _ := u.seen(); req != nil {
			t.Errorf("forwarded after the rotation, with Subject %q", req.Header.Get("Subject"))
		}
	}
	conf := redisTLS(rc, time.Now())
	leaf, err := x509.ParseCertificate(conf.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	expectEqual(t, "client certificate after rotation", leaf.Subject.CommonName, "client-two")

	// A file that no longer makes a configuration is an ERROR line; the last good one stays.
	logs := captureLogs(inner(h2))
	writeByRename(t, caFile, "no certificate here\n")
	for round := 0; round < 2; round++ {
		checkNow(rc.tlsFiles.ca.file)
		expectStatus(t, send(h2, bearerRequest("bogus-broken-"+strconv.Itoa(round))), http.StatusUnauthorized)
	}
	if !strings.Contains(logs(), "cache.redis.tls.ca: no PEM certificate found; the last good content stays in use") {
		t.Errorf("a broken CA file was not logged:\n%s", logs())
	}
	if redisTLS(rc, time.Now()) != conf {
		t.Error("a broken CA file replaced the TLS configuration")
	}
}

// TestRedisReleaseAfterRotation: a connection that was in use while the TLS files changed is
// closed when it is given back, not pooled, so that no later command runs on the old trust. One of
// the current configuration is pooled.
func TestRedisReleaseAfterRotation(t *testing.T) {
	rc := newRedisClient([]string{"127.0.0.1:1"}, time.Second)
	before, after := &tls.Config{}, &tls.Config{}
	rc.tls = after
	old, oldPeer := net.Pipe()
	defer oldPeer.Close()
	redisRelease(rc, &redisConn{c: old, conf: before})
	if len(rc.idle) != 0 {
		t.Fatal("a connection of the replaced TLS configuration was pooled")
	}
	_ = oldPeer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := oldPeer.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("a connection of the replaced TLS configuration was left open: %v", err)
	}
	current, currentPeer := net.Pipe()
	defer currentPeer.Close()
	redisRelease(rc, &redisConn{c: current, conf: after})
	if len(rc.idle) != 1 || rc.idle[0].c != current {
		t.Errorf("a connection of the current TLS configuration was not pooled")
	}
	_ = current.Close()
}

// isTimeout tells a read deadline's error.
func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestRedisPasswordFileProblemsAreLogged: a cache.redis.passwordFile that stops holding one
// password keeps the last good one, and the next lookup through any handler of the middleware logs
// an ERROR line naming the option, once. The file is read when a connection is opened (AUTH); the
// test reads it as a dial would, since a pooled connection is not opened again.
func TestRedisPasswordFileProblemsAreLogged(t *testing.T) {
	fake := startFakeRedis(t, map[string]string{"MGET": "*2\r\n$-1\r\n$-1\r\n"})
	idp := newRevocableIDP(t)
	file := writeTemp(t, t.TempDir(), "redis-password", "first-password\n")
	cfg := sharedConfig(idp, fake.ln.Addr().String(), func(c *Config) { c.Cache.Redis.PasswordFile = file })
	h1, _ := replica(t, "password@redis-file", cfg)
	h2, _ := replica(t, "password@redis-file", cfg) // a second New with the same configuration
	logs := captureLogs(inner(h2))
	expectStatus(t, send(h1, bearerRequest("tok-first")), http.StatusOK)
	rc := inner(h1).settings.shared.client
	if got := rc.password(); got != "first-password" {
		t.Fatalf("password %q, want the file's", got)
	}

	writeByRename(t, file, "two\nlines\n")
	for round := 0; round < 2; round++ { // the first read sees the change, the second takes it
		checkNow(rc.passwordFile)
		if got := rc.password(); got != "first-password" {
			t.Fatalf("round %d: password %q, want the last good one", round, got)
		}
	}
	const line = "error: cache.redis.passwordFile: the file has more than one line"
	for i, token := range []string{"tok-second", "tok-third"} {
		expectStatus(t, send(h2, bearerRequest(token)), http.StatusOK)
		if n := strings.Count(logs(), line); n != 1 {
			t.Errorf("after lookup %d the problem was logged %d times, want once:\n%s", i+1, n, logs())
		}
	}
}
