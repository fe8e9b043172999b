package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// TestRevocationHandlerServesAsMiddleware: a middleware with revocation answers every request
// off revocation.path exactly as the same middleware without it: hits, misses, denials and the
// general path alike. revocationHandler repeats middleware.ServeHTTP's dispatch instead of
// calling it (revocation.go), so this is what keeps the two together. Each configuration gets
// three handlers of one middleware, each from a New of its own as Traefik builds one per router
// and again on a reload, and requests take turns.
func TestRevocationHandlerServesAsMiddleware(t *testing.T) {
	idp := newRevocableIDP(t)
	sources := []struct {
		name string
		tune func(*Config)
	}{
		{"header only (the fast path)", func(*Config) {}},
		{"header or query (the fast path hands a query on)", func(c *Config) { c.TokenSource.Query = "access_token" }},
		{"query only (no fast path)", func(c *Config) {
			c.TokenSource.Header = ""
			c.TokenSource.HeaderAuthScheme = ""
			c.TokenSource.Query = "access_token"
		}},
	}
	requests := []struct {
		desc  string
		token string // the token, sent as the source wants; "" sends none
		path  string
		extra func(*http.Request)
		want  string // in both answers, so that the comparison compares what it should
	}{
		{"a new token (a miss)", "tok-dispatch", "/api", nil, "upstream Group=admin;"},
		{"the same token (a hit)", "tok-dispatch", "/api", nil, "upstream Group=admin;"},
		{"a hit with a forged identity", "tok-dispatch", "/api", forgeIdentity, "upstream Group=admin; Subject=tok-dispatch; X-Email=; user= query="},
		{"a miss with a forged identity", "tok-dispatch-2", "/api", forgeIdentity, "upstream Group=admin; Subject=tok-dispatch-2; X-Email=; user= query="},
		{"no token, with a forged identity", "", "/api", forgeIdentity, "status Unauthorized"},
		{"an inactive token", "bogus-dispatch", "/api", nil, `status Unauthorized, challenge Bearer realm="traefik", error="invalid_token"`},
		{"no token", "", "/api", nil, "status Unauthorized"},
		{"a malformed header", "", "/api", header("Authorization", "Bearer Bearer x"), "status Unauthorized"},
		{"a path next to revocation.path", "tok-dispatch", "/revoke/x", nil, "upstream Group=admin;"},
		{"revocation.path in another case", "tok-dispatch", "/Revoke", nil, "upstream Group=admin;"},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			plain := bearerConfig(idp.srv.URL + "/introspect")
			plain.ForwardHeaders = map[string]string{"Group": "grp", "Subject": "sub", "X-Email": "email"}
			src.tune(plain)
			copied := *plain // the same options (New only reads them), and revocation
			revoking := &copied
			revoking.Revocation = RevocationConfig{Path: "/revoke", URL: idp.srv.URL + "/revoke"}
			base := "dispatch-" + strings.ReplaceAll(src.name, " ", "-")
			want := handlerTrio(t, base+"@plain", plain)
			got := handlerTrio(t, base+"@revoking", revoking)
			if _, ok := got[0].h.(*revocationHandler); !ok {
				t.Fatalf("New built %T for a configuration with revocation, want *revocationHandler", got[0].h)
			}
			for i, r := range requests {
				w, g := want[i%3], got[i%3]
				wantDesc := answerOf(w, dispatchRequest(plain, r.path, r.token, r.extra))
				gotDesc := answerOf(g, dispatchRequest(revoking, r.path, r.token, r.extra))
				if !strings.Contains(wantDesc, r.want) {
					t.Errorf("%s: without revocation %s, want %s", r.desc, wantDesc, r.want)
				}
				if gotDesc != wantDesc {
					t.Errorf("%s: with revocation %s; without %s", r.desc, gotDesc, wantDesc)
				}
			}
		})
	}
}

// trioHandler is one handler New built, with the upstream behind it.
type trioHandler struct {
	h  http.Handler
	up *upstream
}

// handlerTrio builds three handlers of one middleware name and configuration, each by a New of its
// own, as Traefik builds one per router and again on a reload.
func handlerTrio(t *testing.T, name string, cfg *Config) []trioHandler {
	var out []trioHandler
	for i := 0; i < 3; i++ {
		h, up := replica(t, name, cfg)
		out = append(out, trioHandler{h: h, up: up})
	}
	return out
}

// dispatchRequest is a GET of path with token where cfg's source reads it first.
func dispatchRequest(cfg *Config, path, token string, extra func(*http.Request)) *http.Request {
	target := path
	if token != "" && cfg.TokenSource.Header == "" {
		target += "?access_token=" + token
	}
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" && cfg.TokenSource.Header != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if extra != nil {
		extra(req)
	}
	return req
}

// forgeIdentity adds what a client could send to pass for the IdP's answer: a forwarded header
// whose claim the answer has, one whose claim it lacks (email), the underscore twin of that one,
// and a user in the URL.
func forgeIdentity(req *http.Request) {
	req.Header["Group"] = []string{"forged"}
	req.Header["X-Email"] = []string{"forged@example.com"}
	req.Header["X_email"] = []string{"forged@example.com"}
	req.URL.User = url.UserPassword("forged", "secret")
}

// answerOf serves req through th and describes the outcome: the status and challenge, and for a
// request that reached upstream every header it carried there, its URL user and its query.
func answerOf(th trioHandler, req *http.Request) string {
	th.up.reset()
	rec := send(th.h, req)
	out := "status " + http.StatusText(rec.Code) + ", challenge " + strings.Join(rec.Header()["Www-Authenticate"], ";")
	up, _ := th.up.seen()
	if up == nil {
		return out
	}
	names := make([]string, 0, len(up.Header))
	for name := range up.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	out += ", upstream"
	for _, name := range names {
		out += " " + name + "=" + strings.Join(up.Header[name], ",") + ";"
	}
	user := ""
	if up.URL.User != nil {
		user = up.URL.User.String()
	}
	return out + " user=" + user + " query=" + up.URL.RawQuery
}
