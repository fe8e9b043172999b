package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// Hostile requests against a middleware that reads the token from a Bearer header, a query
// parameter and a cookie: malformed tokens are refused before any IdP call, and the identity the
// upstream sees comes only from the IdP's answer.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// hostileIDP answers by token: "good…" is an active admin alice, "nouser…" is active without any
// identity claim, "ctl…" has a username with a line break; anything else is inactive.
func hostileIDP(w http.ResponseWriter, r *http.Request, call int) {
	tok := r.PostForm.Get("token")
	switch {
	case strings.HasPrefix(tok, "good"):
		answerJSON(`{"active":true,"sub":"alice","grp":"admin","username":"alice","exp":`+futureExp()+`}`)(w, r, call)
	case strings.HasPrefix(tok, "nouser"):
		answerJSON(`{"active":true,"exp":`+futureExp()+`}`)(w, r, call)
	case strings.HasPrefix(tok, "ctl"):
		answerJSON(`{"active":true,"sub":"carol","username":"carol\n127.0.0.1 - admin [forged log line]"}`)(w, r, call)
	default:
		answerJSON(`{"active":false}`)(w, r, call)
	}
}

// hostileRig is a middleware with all three token sources, identity headers and a username claim.
// Its handler takes turns through the rig's three handlers of one middleware.
func hostileRig(t *testing.T, name string, tune func(*Config)) (*fakeIDP, *upstream, http.Handler) {
	t.Helper()
	rig := newCacheRig(t, name, hostileIDP, func(cfg *Config) {
		cfg.ClientConfig.TimeoutSeconds = 1
		cfg.TokenSource = TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer", Query: "access_token", Cookie: "session"}
		cfg.ForwardHeaders = map[string]string{"X-User": "sub", "X-Group": "grp"}
		cfg.UsernameClaim = "username"
		if tune != nil {
			tune(cfg)
		}
	})
	return rig.idp, rig.up, rig
}

// setRaw sets header values as they are, bypassing the checks of Header.Set.
func setRaw(name string, values ...string) func(*http.Request) {
	return func(r *http.Request) { r.Header[name] = values }
}

func TestHostileTokens(t *testing.T) {
	huge := strings.Repeat("g", 64<<10)
	testCases := []struct {
		desc          string
		tune          func(*Config)
		target        string
		request       func(*http.Request)
		wantStatus    int
		wantChallenge string
		wantIDPToken  string // the token the IdP received; "" means it was not called
		wantCalls     int    // IdP calls for the two requests: answers are cached, inactive ones are not
	}{
		{desc: "64 KiB token in the header", request: bearer(huge), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "64 KiB token in the query", target: "/api?access_token=" + huge, wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "64 KiB token in a cookie", request: header("Cookie", "session="+huge), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "CR in a query token", target: "/api?access_token=good%0Dx", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "LF in a query token", target: "/api?access_token=good%0Ax", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "NUL in a query token", target: "/api?access_token=good%00x", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "CRLF ending a query token", target: "/api?access_token=good%0D%0A", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "CR in a header token", request: setRaw("Authorization", "Bearer good\rx"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "LF in a header token", request: setRaw("Authorization", "Bearer good\nx"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "NUL in a header token", request: setRaw("Authorization", "Bearer good\x00x"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "NUL ending a header token", request: setRaw("Authorization", "Bearer good\x00"), wantStatus: 401, wantChallenge: challengeRealm},
		// README: a byte outside visible ASCII (CR, LF, NUL, non-ASCII) makes the token malformed.
		{desc: "CRLF ending a header token", request: setRaw("Authorization", "Bearer good\r\n"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "vertical tab ending a header token", request: setRaw("Authorization", "Bearer good\v"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "non-ASCII in a header token", request: setRaw("Authorization", "Bearer g\u00f6od"), wantStatus: 401, wantChallenge: challengeRealm},
		// U+00A0 and U+0085 are bytes Go's HTTP server lets through (obs-text).
		{desc: "no-break space ending a header token", request: setRaw("Authorization", "Bearer good\u00a0"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "NEL ending a header token", request: setRaw("Authorization", "Bearer good\u0085"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "non-ASCII in a query token", target: "/api?access_token=g%C3%B6od", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "non-ASCII in a cookie token", request: header("Cookie", "session=g\u00f6od"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "space in a query token", target: "/api?access_token=good+x", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "two Authorization headers", request: combine(bearer("good1"), bearer("good2")), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "two Authorization headers, one empty", request: setRaw("Authorization", "Bearer good1", ""), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "Bearer Bearer x", request: header("Authorization", "Bearer Bearer good"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "another scheme is not skipped for the query", target: "/api?access_token=good-q", request: header("Authorization", "Basic Z29vZA=="), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "two query parameters", target: "/api?access_token=good1&access_token=good2", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "header and query: the header wins", target: "/api?access_token=good-q", request: bearer("good-h"), wantStatus: 200, wantIDPToken: "good-h", wantCalls: 1},
		{desc: "header and cookie: the header wins", request: combine(bearer("good-h"), header("Cookie", "session=good-c")), wantStatus: 200, wantIDPToken: "good-h", wantCalls: 1},
		{desc: "query and cookie: the query wins", target: "/api?access_token=good-q", request: header("Cookie", "session=good-c"), wantStatus: 200, wantIDPToken: "good-q", wantCalls: 1},
		{desc: "empty cookie", request: header("Cookie", "session="), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "duplicate cookies", request: header("Cookie", "session=good1; session=good2"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "duplicate cookies in two Cookie headers", request: combine(header("Cookie", "session=good1"), header("Cookie", "session=good2")), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "the scheme without a token", request: header("Authorization", "Bearer"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "the scheme without a token falls through to the cookie", request: combine(header("Authorization", "Bearer "), header("Cookie", "session=good-c")), wantStatus: 200, wantIDPToken: "good-c", wantCalls: 1},
		{desc: "inactive token", request: bearer("revoked"), wantStatus: 401, wantChallenge: challengeInvalidToken, wantIDPToken: "revoked", wantCalls: 2},
		{desc: "maxLength 10: 10 bytes pass", tune: maxLength(10), request: bearer("good-56789"), wantStatus: 200, wantIDPToken: "good-56789", wantCalls: 1},
		{desc: "maxLength 10: 11 bytes in the header are refused", tune: maxLength(10), request: bearer("good-567890"), wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "maxLength 10: 11 bytes in the query are refused", tune: maxLength(10), target: "/api?access_token=good-567890", wantStatus: 401, wantChallenge: challengeRealm},
		{desc: "maxLength 10: 11 bytes in a cookie are refused", tune: maxLength(10), request: header("Cookie", "session=good-567890"), wantStatus: 401, wantChallenge: challengeRealm},
	}
	for i, test := range testCases {
		test := test
		name := fmt.Sprintf("hostile-%d@test", i)
		t.Run(test.desc, func(t *testing.T) {
			idp, up, m := hostileRig(t, name, test.tune)
			target := test.target
			if target == "" {
				target = "/api"
			}
			// Twice: the second request may be answered from the cache or by the fast path.
			for round := 1; round <= 2; round++ {
				up.reset()
				req := httptest.NewRequest(http.MethodGet, target, nil)
				if test.request != nil {
					test.request(req)
				}
				rec := httptest.NewRecorder()
				m.ServeHTTP(rec, req)
				if rec.Code != test.wantStatus {
					t.Fatalf("request %d: status = %d, want %d", round, rec.Code, test.wantStatus)
				}
				expectEqual(t, "WWW-Authenticate", rec.Header().Get("WWW-Authenticate"), test.wantChallenge)
				seen, hits := up.seen()
				if test.wantStatus != http.StatusOK {
					if hits != 0 {
						t.Errorf("request %d: a denied request reached the upstream", round)
					}
					expectEqual(t, "body", strings.TrimSpace(rec.Body.String()), http.StatusText(test.wantStatus))
					continue
				}
				if hits != 1 {
					t.Fatalf("request %d: upstream hits = %d, want 1", round, hits)
				}
				expectEqual(t, "X-User upstream", strings.Join(seen.Header.Values("X-User"), ","), "alice")
			}
			calls, _, form := idp.snapshot()
			if calls != test.wantCalls {
				t.Errorf("IdP calls = %d, want %d", calls, test.wantCalls)
			}
			if calls > 0 {
				expectEqual(t, "token the IdP received", form.Get("token"), test.wantIDPToken)
			}
		})
	}
}

func maxLength(n int) func(*Config) {
	return func(c *Config) { c.TokenSource.MaxLength = n }
}

// TestHostileIdentitySpoofing shows that identity headers and the access-log user come only from
// the IdP's answer: on a miss, on a cache hit (the fast path for a header token, serve for a query
// token), when the claim is missing, and whatever casing or number of copies the client sends.
func TestHostileIdentitySpoofing(t *testing.T) {
	forge := func(r *http.Request) {
		r.Header.Add("X-User", "mallory")
		r.Header.Add("x-user", "mallory2") // canonicalized as the HTTP server does
		r.Header.Add("X-GROUP", "root")
		r.Header.Add("x-group", "root2")
		r.URL.User = url.UserPassword("mallory", "pw")
	}
	testCases := []struct {
		desc      string
		target    string
		request   func(*http.Request)
		wantUser  string // X-User and the URL user; "" means absent
		wantGroup string
	}{
		{desc: "header token, claims present", request: combine(bearer("good-1"), forge), wantUser: "alice", wantGroup: "admin"},
		{desc: "header token, claims missing", request: combine(bearer("nouser-1"), forge), wantUser: "", wantGroup: ""},
		{desc: "query token, claims present", target: "/api?access_token=good-2", request: forge, wantUser: "alice", wantGroup: "admin"},
		{desc: "query token, claims missing", target: "/api?access_token=nouser-2", request: forge, wantUser: "", wantGroup: ""},
		{desc: "cookie token, claims missing", request: combine(header("Cookie", "session=nouser-3"), forge), wantUser: "", wantGroup: ""},
	}
	for i, test := range testCases {
		test := test
		name := fmt.Sprintf("spoof-%d@test", i)
		t.Run(test.desc, func(t *testing.T) {
			idp, up, m := hostileRig(t, name, nil)
			target := test.target
			if target == "" {
				target = "/api"
			}
			for round := 1; round <= 3; round++ {
				up.reset()
				req := httptest.NewRequest(http.MethodGet, target, nil)
				test.request(req)
				rec := httptest.NewRecorder()
				m.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					t.Fatalf("request %d: status = %d, want 200", round, rec.Code)
				}
				seen, _ := up.seen()
				expectEqual(t, "X-User", strings.Join(seen.Header.Values("X-User"), ","), test.wantUser)
				expectEqual(t, "X-Group", strings.Join(seen.Header.Values("X-Group"), ","), test.wantGroup)
				expectEqual(t, "URL user", urlUser(seen), test.wantUser)
				if seen.URL.User != nil {
					if _, set := seen.URL.User.Password(); set {
						t.Errorf("request %d: the client's URL password reached the upstream", round)
					}
				}
			}
			if calls, _, _ := idp.snapshot(); calls != 1 {
				t.Errorf("IdP calls = %d, want 1 (then cache hits)", calls)
			}
		})
	}
}

// TestHostileUsernameWithControlCharacter: a usernameClaim value cannot carry a line break into
// Traefik's access log (the CLF format prints ClientUsername as it is). It is refused like a
// forwardHeaders value with a control character.
func TestHostileUsernameWithControlCharacter(t *testing.T) {
	_, up, m := hostileRig(t, "ctl-user@test", nil)
	for round := 1; round <= 2; round++ {
		up.reset()
		req := httptest.NewRequest(http.MethodGet, "/api", nil)
		req.Header.Set("Authorization", "Bearer ctl-1")
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, req)
		if seen, hits := up.seen(); hits != 0 && strings.ContainsAny(urlUser(seen), "\r\n") {
			t.Errorf("request %d: the upstream (and the access log) got the user %q", round, urlUser(seen))
		}
		expectStatus(t, rec, http.StatusServiceUnavailable)
	}
}

func urlUser(r *http.Request) string {
	if r.URL.User == nil {
		return ""
	}
	return r.URL.User.Username()
}

// TestHostileOverTheWire sends forged identity headers in odd casings, twice, and a user in an
// absolute-form request target, through a real HTTP server, as Traefik's entry point gets them.
func TestHostileOverTheWire(t *testing.T) {
	idp, up, m := hostileRig(t, "wire@test", nil)
	srv := httptest.NewServer(m)
	defer srv.Close()
	testCases := []struct {
		desc      string
		token     string
		wantUser  string
		wantGroup string
	}{
		{desc: "claims present", token: "good-w", wantUser: "alice", wantGroup: "admin"},
		{desc: "claims missing", token: "nouser-w", wantUser: "", wantGroup: ""},
	}
	for _, test := range testCases {
		test := test
		t.Run(test.desc, func(t *testing.T) {
			for round := 1; round <= 2; round++ {
				up.reset()
				raw := "GET http://mallory:pw@example.com/api HTTP/1.1\r\n" +
					"Host: example.com\r\n" +
					"Authorization: Bearer " + test.token + "\r\n" +
					"x-uSeR: mallory\r\n" +
					"X-USER: mallory2\r\n" +
					"x-group: root\r\n" +
					"Connection: close\r\n\r\n"
				status := rawRoundTrip(t, srv.Listener.Addr().String(), raw)
				if status != http.StatusOK {
					t.Fatalf("request %d: status = %d, want 200", round, status)
				}
				seen, _ := up.seen()
				expectEqual(t, "X-User", strings.Join(seen.Header.Values("X-User"), ","), test.wantUser)
				expectEqual(t, "X-Group", strings.Join(seen.Header.Values("X-Group"), ","), test.wantGroup)
				expectEqual(t, "URL user", urlUser(seen), test.wantUser)
			}
		})
	}
	if calls, _, _ := idp.snapshot(); calls != 2 {
		t.Errorf("IdP calls = %d, want 2", calls)
	}
}

// rawRoundTrip writes raw to addr and returns the response status.
func rawRoundTrip(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestHostileCarrierTwins sends, beside a checked token, a second credential under a name some
// backend reads as a configured carrier: PHP turns ".", " " and "[" into "_", drops leading blanks
// and cuts names at a NUL; ASP.NET Core ignores case; CGI reads "_" as "-" in header names; RFC
// 2109 parsers split cookies on ",". None may reach the upstream, whether the token came from the
// header or from the carrier itself, and with forwardAuthorization either way.
func TestHostileCarrierTwins(t *testing.T) {
	queryTwins := []string{"access.token=forged", "access+token=forged", "%20access_token=forged",
		"access_token%00=forged", "access[token=forged", "ACCESS_TOKEN=forged"}
	for _, keep := range []bool{false, true} {
		keep := keep
		t.Run(fmt.Sprintf("forwardAuthorization %v", keep), func(t *testing.T) {
			_, up, h := hostileRig(t, fmt.Sprintf("twins-%v@test", keep), func(c *Config) { c.ForwardAuthorization = keep })
			forwarded := func(req *http.Request) *http.Request {
				t.Helper()
				up.reset()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				seen, _ := up.seen()
				if rec.Code != http.StatusOK {
					return nil
				}
				return seen
			}
			for _, twin := range queryTwins {
				req := httptest.NewRequest(http.MethodGet, "/api?"+twin+"&k=1", nil)
				req.Header.Set("Authorization", "Bearer good-1")
				if seen := forwarded(req); seen == nil || seen.URL.RawQuery != "k=1" {
					t.Errorf("header token and ?%s: upstream %v", twin, seen)
				}
				req = httptest.NewRequest(http.MethodGet, "/api?access_token=good-1&"+twin, nil)
				if seen := forwarded(req); seen != nil {
					t.Errorf("query token and %s: passed with %q", twin, seen.URL.RawQuery)
				}
			}
			for _, cookie := range []string{"session.x=1; SESSION=forged", "other=1, session=forged", "Session=forged"} {
				req := httptest.NewRequest(http.MethodGet, "/api", nil)
				req.Header.Set("Authorization", "Bearer good-1")
				req.Header.Set("Cookie", cookie)
				if seen := forwarded(req); seen == nil || strings.Contains(seen.Header.Get("Cookie"), "forged") {
					t.Errorf("header token and Cookie %q: upstream %v", cookie, seen)
				}
				req = httptest.NewRequest(http.MethodGet, "/api", nil)
				req.Header.Set("Cookie", "session=good-1; "+cookie)
				if seen := forwarded(req); seen != nil {
					t.Errorf("cookie token and %q: passed with Cookie %q", cookie, seen.Header.Get("Cookie"))
				}
			}
		})
	}
}

// TestHostileTokenHeaderTwinWithManySeparators: a token header whose twins are too many to list
// still loses them, found by comparing every header, on the miss and on hits.
func TestHostileTokenHeaderTwinWithManySeparators(t *testing.T) {
	for _, keep := range []bool{false, true} {
		_, up, h := hostileRig(t, fmt.Sprintf("long-token-header-%v@test", keep), func(c *Config) {
			c.TokenSource = TokenSource{Header: "X-A-B-C-D-E-Token"}
			c.ForwardAuthorization = keep
		})
		for round := 0; round < 3; round++ {
			up.reset()
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header.Set("X-A-B-C-D-E-Token", "good-1")
			req.Header["X_a_b_c_d_e_token"] = []string{"forged"}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			expectStatus(t, rec, http.StatusOK)
			seen, _ := up.seen()
			if _, there := seen.Header["X_a_b_c_d_e_token"]; there {
				t.Errorf("forwardAuthorization %v, request %d: the twin reached the upstream", keep, round)
			}
			if got := seen.Header.Get("X-A-B-C-D-E-Token"); (got != "") != keep {
				t.Errorf("forwardAuthorization %v, request %d: token header %q", keep, round, got)
			}
		}
	}
}
