//go:build !yaegi && !nointerp

package oauthintrospection

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestLeastFullAnswers checks that least-full (bench/least/full), the floor docs/performance.md
// compares a hit and a miss of ours with, answers as ours does for the bench's configuration: a
// floor that skipped a check would understate what the features cost. It runs interpreted, as
// BenchmarkTraefikPath and make bench run it.
func TestLeastFullAnswers(t *testing.T) {
	var calls atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Basic eA==" || r.PostFormValue("token_type_hint") != "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		answers := map[string]string{
			"inactive": `{"active":false,"exp":"bad"}`,
			"other":    `{"active":true,"grp":"user","exp":4102444800}`,
			"array":    `{"active":true,"grp":["x","admin",3],"exp":4102444800}`,
			"badexp":   `{"active":true,"grp":"admin","exp":"soon"}`,
			"ctl":      `{"active":true,"grp":["admin","x\u0001"],"exp":4102444800}`,
			"future":   `{"active":true,"grp":"admin","exp":4102444800,"nbf":4102444000}`,
			"expired":  `{"active":true,"grp":"admin","exp":1000}`,
			"float":    `{"active":true,"grp":"admin","exp":4.1024448e9}`,
			"two":      `{"active":true,"grp":"admin"} {}`,
		}
		switch tok := r.PostFormValue("token"); tok {
		case "redirect":
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			answer, ok := answers[tok]
			if !ok {
				answer = `{"active":true,"grp":"admin","exp":4102444800}`
			}
			_, _ = io.WriteString(w, answer)
		}
	}))
	t.Cleanup(idp.Close)
	h := interpretSource(t, "leastfull", readSource(t, "bench/least/full/leastfull.go"), map[string]any{"URL": idp.URL, "Authorization": "Basic eA==", "MaxEntries": 3})
	for _, c := range []struct {
		auth         string
		want         int
		group, exp   string // what reaches next
		challenge    string // in WWW-Authenticate
		introspected bool
	}{
		{"Bearer good", 204, "admin", "4102444800", "", true},
		{"Bearer good", 204, "admin", "4102444800", "", false}, // a hit
		{"  bearer   good  ", 204, "admin", "4102444800", "", false},
		{"Bearer inactive", 401, "", "", "invalid_token", true},
		{"Bearer inactive", 401, "", "", "invalid_token", true}, // not cached
		{"Bearer other", 403, "", "", "insufficient_scope", true},
		{"Bearer other", 403, "", "", "insufficient_scope", false}, // cached
		{"Bearer array", 204, `x,admin,3`, "4102444800", "", true},
		{"Bearer badexp", 503, "", "", "", true},
		{"Bearer ctl", 503, "", "", "", true},
		{"Bearer future", 401, "", "", "invalid_token", true},
		{"Bearer expired", 401, "", "", "invalid_token", true},
		{"Bearer float", 204, "admin", "4102444800", "", true},
		{"Bearer two", 503, "", "", "", true},
		{"Bearer fail", 503, "", "", "", true},
		{"Bearer redirect", 503, "", "", "", true},
		{"Bearer good", 204, "admin", "4102444800", "", true}, // evicted by the three entries since
		{"Basic good", 401, "", "", "", false},
		{"Bearer go od", 401, "", "", "invalid_token", false},
		{"", 401, "", "", "", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		req.Header.Set("Group", "forged")
		req.Header.Set("Expires_At", "forged")
		before := calls.Load()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Code
		if got == http.StatusNotFound {
			got = 204 // next, http.NotFoundHandler, was reached
			if g, e := req.Header.Get("Group"), req.Header.Get("Expires-At"); g != c.group || e != c.exp {
				t.Errorf("%q: next got Group %q, Expires-At %q; want %q, %q", c.auth, g, e, c.group, c.exp)
			}
			if twin, auth := req.Header.Get("Expires_At"), req.Header.Get("Authorization"); twin != "" || auth != "" {
				t.Errorf("%q: next got the twin %q and the credential %q", c.auth, twin, auth)
			}
		}
		if got != c.want {
			t.Errorf("%q: status %d, want %d", c.auth, rec.Code, c.want)
		}
		if c.want != 204 && rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%q: a denial without Cache-Control: no-store", c.auth)
		}
		if !strings.Contains(rec.Header().Get("WWW-Authenticate"), c.challenge) {
			t.Errorf("%q: challenge %q, want one with %q", c.auth, rec.Header().Get("WWW-Authenticate"), c.challenge)
		}
		if made := calls.Load() - before; (made == 1) != c.introspected || made > 1 {
			t.Errorf("%q: %d IdP calls, want introspected=%v", c.auth, made, c.introspected)
		}
	}
}
