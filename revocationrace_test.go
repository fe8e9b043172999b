package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// A revocation that overtakes an introspection in flight: the answer on its way may predate the
// revocation, so nothing that comes after the revocation may be decided by it.

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// revocableHeldIDP is an IdP whose first introspection of a token not yet revoked is decided active on
// arrival and held until release is closed; once /revoke has been called it answers inactive at
// once. calls counts introspections.
type revocableHeldIDP struct {
	srv     *httptest.Server
	release chan struct{}
	arrived atomic.Bool
	revoked atomic.Bool
	calls   atomic.Int32
}

func newRevocableHeldIDP(t *testing.T) *revocableHeldIDP {
	f := &revocableHeldIDP{release: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/revoke" {
			f.revoked.Store(true)
			return
		}
		f.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if f.revoked.Load() {
			_, _ = w.Write([]byte(`{"active":false}`))
			return
		}
		f.arrived.Store(true)
		firstReady(f.release, r.Context().Done())
		_, _ = w.Write([]byte(`{"active":true,"grp":"admin","sub":"raced"}`))
	}))
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// TestRevocationOvertakesAnIntrospection: while an introspection of a token is in flight, the
// token is revoked through another handler of the same middleware. A request that comes after
// the revocation does not wait for the answer in flight: it is introspected on its own and
// refused. The answer in flight, when it comes, lets its own request through (it was asked
// before the revocation) and is not cached: neither handler, nor a second New with the same
// configuration, lets the token through afterwards. With header templates (a cache whose keys
// hold more than the token), every introspection in flight is overtaken.
func TestRevocationOvertakesAnIntrospection(t *testing.T) {
	for _, test := range []struct {
		desc    string
		headers map[string]string
	}{
		{"keyed by the token", nil},
		{"keyed by the token and templates", map[string]string{"X-Path": "{{ .Request.URL.Path }}"}},
	} {
		idp := newRevocableHeldIDP(t)
		released := false
		release := func() {
			if !released {
				released = true
				close(idp.release)
			}
		}
		t.Cleanup(release)
		cfg := bearerConfig(idp.srv.URL + "/introspect")
		cfg.ClientConfig.TimeoutSeconds = 10
		cfg.ClientConfig.Headers = test.headers
		cfg.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
		name := "overtaken-" + time.Now().Format("150405.000000") + "@revocation"
		first, up := replica(t, name, cfg)
		second, _ := replica(t, name, cfg) // another router of the same middleware

		inFlight := make(chan int, 1)
		go func() { inFlight <- send(first, bearerRequest("tok-held")).Code }()
		waitFor(t, 5*time.Second, test.desc+": the IdP to hold the introspection", idp.arrived.Load)
		expectStatus(t, revokeThrough(second, "tok-held", ""), http.StatusOK)

		// An atomic, not a select in the condition: under Yaegi v0.16.1 the select form read the code
		// back as 0.
		var after atomic.Int32
		go func() { after.Store(int32(send(first, bearerRequest("tok-held")).Code)) }()
		waitFor(t, 5*time.Second, test.desc+": the request after the revocation to be answered without the held one", func() bool {
			return after.Load() != 0
		})
		release()
		if code := after.Load(); code != http.StatusUnauthorized {
			t.Errorf("%s: the request after the revocation: %d, want 401", test.desc, code)
		}
		if code := <-inFlight; code != http.StatusOK {
			t.Errorf("%s: the request in flight: %d, want 200 (asked before the revocation)", test.desc, code)
		}
		_, passed := up.seen()
		calls := idp.calls.Load()
		reloaded, _ := replica(t, name, cfg)
		for i, h := range []http.Handler{first, second, reloaded} {
			if code := send(h, bearerRequest("tok-held")).Code; code != http.StatusUnauthorized {
				t.Errorf("%s: handler %d after both answers: %d, want 401", test.desc, i, code)
			}
		}
		if _, now := up.seen(); now != passed {
			t.Errorf("%s: %d more requests reached the backend after the revocation", test.desc, now-passed)
		}
		if got := idp.calls.Load() - calls; got != 3 {
			t.Errorf("%s: %d introspections for three requests after the revocation, want 3 (nothing cached, no negative caching)", test.desc, got)
		}
	}
}
