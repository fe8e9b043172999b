package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// What the shared tier trusts: an answer in Redis is only as good as the connection it came over,
// to the IdP and to Redis.

import (
	"crypto/tls"
	"net/http"
	"testing"
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
