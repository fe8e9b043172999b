package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// TestFastPath checks that the hot path takes exactly the requests it can serve as serve would,
// and leaves every other request untouched for serve.
func TestFastPath(t *testing.T) {
	rig := newCacheRig(t, "fast@test", func(w http.ResponseWriter, r *http.Request, call int) {
		_ = r.ParseForm()
		switch r.PostForm.Get("token") {
		case "allowed":
			answerJSON(`{"active":true,"grp":"admin","username":"alice","exp":`+futureExp()+`}`)(w, r, call)
		default:
			answerJSON(`{"active":true,"grp":"user"}`)(w, r, call)
		}
	}, func(c *Config) {
		c.Claims = "Equals(`grp`, `admin`)"
		c.UsernameClaim = "username"
		c.ForwardHeaders = map[string]string{"Group": "grp", "X-Missing": "nope"}
	})
	expectStatus(t, rig.do("allowed"), http.StatusOK)
	expectStatus(t, rig.do("forbidden"), http.StatusForbidden)
	// Each handler of the middleware (two routers' and a reload's) serves the hits the others cached.
	for i, m := range rig.handlers {
		t.Run(fmt.Sprint("handler ", i), func(t *testing.T) { checkFastPath(t, m.fast) })
	}
}

// checkFastPath checks fast, whose cache knows "allowed" (passes, as alice, Group admin) and
// "forbidden" (403).
func checkFastPath(t *testing.T, fast *fastPath) {
	if fast == nil {
		t.Fatal("a Bearer header configuration has no fast path")
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "bearer allowed")
	req.Header.Set("Group", "root")
	req.Header.Set("X-Missing", "forged")
	req.Header["X_missing"] = []string{"forged"}
	req.URL.User = url.User("mallory")
	if fastHit(fast, req) != fastPassed {
		t.Fatal("a cached allowed token missed the fast path")
	}
	expectEqual(t, "Group", req.Header.Get("Group"), "admin")
	expectUpstream(t, req.Header, map[string]string{"X-Missing": "", "X_missing": absent})
	expectEqual(t, "Authorization", req.Header.Get("Authorization"), "")
	if req.URL.User == nil || req.URL.User.Username() != "alice" {
		t.Errorf("URL user = %v, want alice", req.URL.User)
	}

	// A well-formed token that the cache does not let through goes to serveUncached; anything else
	// to serve, which reads the request from scratch.
	testCases := []struct {
		desc   string
		values []string
		want   int
	}{
		{desc: "a cached 403 is left to serve", values: []string{"Bearer forbidden"}, want: fastUncached},
		{desc: "an unknown token", values: []string{"Bearer unknown"}, want: fastUncached},
		{desc: "two spaces after the scheme", values: []string{"Bearer  allowed"}, want: fastDeclined},
		{desc: "two headers", values: []string{"Bearer allowed", "Bearer allowed"}, want: fastDeclined},
		{desc: "another scheme", values: []string{"Basic allowed"}, want: fastDeclined},
		{desc: "the scheme alone", values: []string{"Bearer "}, want: fastDeclined},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range test.values {
				req.Header.Add("Authorization", v)
			}
			req.Header.Set("Group", "root")
			if took := fastHit(fast, req); took != test.want {
				t.Fatalf("fastHit = %d, want %d", took, test.want)
			}
			expectEqual(t, "Group (untouched)", req.Header.Get("Group"), "root")
		})
	}
}

func TestNoFastPathWhereItCannotApply(t *testing.T) {
	testCases := []struct {
		desc string
		tune func(*Config)
	}{
		{desc: "query source", tune: func(c *Config) { c.TokenSource = TokenSource{Query: "access_token"} }},
		{desc: "cache off", tune: func(c *Config) { c.Cache.TTLSeconds = 0 }},
		{desc: "a forwarded name with too many separators to list its twins", tune: func(c *Config) {
			c.ForwardHeaders = map[string]string{"A-B-C-D-E-F-G": "sub"}
		}},
		{desc: "header templates", tune: func(c *Config) {
			c.ClientConfig.Headers = map[string]string{"X-Path": "{{ .Request.URL.Path }}"}
		}},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			rig := newCacheRig(t, "nofast-"+test.desc+"@test", answerJSON(`{"active":true}`), test.tune)
			if rig.m.fast != nil {
				t.Errorf("a fast path was built")
			}
		})
	}
}

// TestFastPathStripsTheOtherCarrier: with the query or the cookie configured beside the header (one
// of them alone, not both), a cached header token passes, and the other carrier, which nobody
// checked, never reaches the upstream: the fast path leaves such requests to serve, which strips it.
func TestFastPathStripsTheOtherCarrier(t *testing.T) {
	testCases := []struct {
		desc   string
		source TokenSource
		add    func(*http.Request)
		check  func(t *testing.T, seen *http.Request)
	}{
		{
			desc:   "query",
			source: TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer", Query: "access_token"},
			add:    func(r *http.Request) { r.URL.RawQuery = "access_token=unchecked&x=1" },
			check: func(t *testing.T, seen *http.Request) {
				expectEqual(t, "upstream query", seen.URL.RawQuery, "x=1")
			},
		},
		{
			desc:   "cookie",
			source: TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer", Cookie: "session"},
			add:    func(r *http.Request) { r.Header.Set("Cookie", "session=unchecked; theme=dark") },
			check: func(t *testing.T, seen *http.Request) {
				expectEqual(t, "upstream Cookie", seen.Header.Get("Cookie"), "theme=dark")
			},
		},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			rig := newCacheRig(t, "other-carrier-"+test.desc+"@test", answerJSON(`{"active":true,"grp":"admin"}`),
				func(c *Config) { c.TokenSource = test.source })
			expectStatus(t, rig.do("cached"), http.StatusOK)
			req := bearerRequest("cached")
			test.add(req)
			if took := fastHit(rig.m.fast, req); took != fastDeclined {
				t.Fatalf("fastHit = %d for a request with another carrier, want fastDeclined", took)
			}
			for i := range rig.handlers {
				rig.up.reset()
				req := bearerRequest("cached")
				test.add(req)
				expectStatus(t, send(rig, req), http.StatusOK)
				seen, hits := rig.up.seen()
				if hits != 1 {
					t.Fatalf("handler %d: upstream hits = %d", i, hits)
				}
				test.check(t, seen)
			}
			if rig.calls() != 1 {
				t.Errorf("IdP calls = %d, want 1 (the token is cached)", rig.calls())
			}
		})
	}
}
