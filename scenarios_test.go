package oauthintrospection

// This file uses the standard library only. Its scenario table is run against the compiled handler
// and against the handler interpreted by Yaegi (see modes_test.go): both must pass every row.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.req = r.Clone(context.Background())
	u.hits++
	u.mu.Unlock()
	_, _ = io.WriteString(w, "upstream ok")
}

type scenario struct {
	desc    string
	answer  func(w http.ResponseWriter, r *http.Request, call int)
	options func(idpURL string) map[string]any // nil means hubOptions
	request func(r *http.Request)              // decorates the client request
	target  string                             // request target, "/api" if empty

	wantStatus    int
	wantChallenge string // exact WWW-Authenticate; "" means none
	wantCalls     int    // IdP calls expected
	// wantUpstream lists headers the upstream must see; a "" value means the header must be absent.
	wantUpstream map[string]string
	wantUser     string                                          // the URL user Traefik's access log would show
	check        func(t *testing.T, f *fakeIDP, u *http.Request) // extra assertions
}

const (
	challengeRealm        = `Bearer realm="traefik"`
	challengeInvalidToken = `Bearer realm="traefik", error="invalid_token"`
	challengeInsufficient = `Bearer realm="traefik", error="insufficient_scope"`
)

func activeAdmin() string {
	return `{"active":true,"grp":"admin","exp":` + futureExp() + `,"username":"alice","scope":"read write"}`
}

func coreScenarios() []scenario {
	return []scenario{
		{
			desc:       "hub manifest: active admin token passes with identity headers",
			answer:     answerJSON(`{"active":true,"grp":"admin","exp":4102444800,"client_id":"app"}`),
			request:    bearer("tok-123"),
			wantStatus: http.StatusOK,
			wantCalls:  1,
			wantUpstream: map[string]string{
				"Group": "admin", "Expires-At": "4102444800", "Authorization": absent,
			},
			check: func(t *testing.T, f *fakeIDP, _ *http.Request) {
				_, last, form := f.snapshot()
				expectEqual(t, "method", last.Method, http.MethodPost)
				expectEqual(t, "content type", last.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
				expectEqual(t, "accept", last.Header.Get("Accept"), "application/json")
				expectEqual(t, "configured authorization", last.Header.Get("Authorization"), "Basic ZXhhbXBsZTpleGFtcGxl")
				expectEqual(t, "token", form.Get("token"), "tok-123")
				expectEqual(t, "token_type_hint", form.Get("token_type_hint"), "access_token")
			},
		},
		{
			desc: "no token: 401 with the realm challenge, IdP not called", answer: answerJSON(activeAdmin()),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeRealm,
		},
		{
			desc: "Bearer with nothing after it is no token", answer: answerJSON(activeAdmin()),
			request:    header("Authorization", "Bearer "),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeRealm,
		},
		{
			desc: "another scheme is malformed: 401, IdP not called", answer: answerJSON(activeAdmin()),
			request:    header("Authorization", "Basic dXNlcjpwYXNz"),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeRealm,
		},
		{
			desc: "scheme compares case-insensitively", answer: answerJSON(activeAdmin()),
			request:    header("Authorization", "bearer tok"),
			wantStatus: http.StatusOK, wantCalls: 1,
		},
		{
			desc: "inactive token: 401 invalid_token", answer: answerJSON(`{"active":false}`),
			request: bearer("t"), wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantCalls: 1,
		},
		{
			desc: `active as the string "true" is inactive`, answer: answerJSON(`{"active":"true","grp":"admin"}`),
			request: bearer("t"), wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantCalls: 1,
		},
		{
			desc: "active as 1 is inactive", answer: answerJSON(`{"active":1,"grp":"admin"}`),
			request: bearer("t"), wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantCalls: 1,
		},
		{
			desc: "active missing is inactive", answer: answerJSON(`{"grp":"admin"}`),
			request: bearer("t"), wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantCalls: 1,
		},
		{
			desc: "exp in the past is rejected although active", answer: answerJSON(`{"active":true,"grp":"admin","exp":1000}`),
			request: bearer("t"), wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantCalls: 1,
		},
		{
			desc:    "nbf in the future is rejected although active",
			answer:  answerJSON(`{"active":true,"grp":"admin","nbf":4102444800}`),
			request: bearer("t"), wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantCalls: 1,
		},
		{
			desc: "exp that is not a number fails closed", answer: answerJSON(`{"active":true,"grp":"admin","exp":"soon"}`),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "claims false: 403 insufficient_scope", answer: answerJSON(`{"active":true,"grp":"user"}`),
			request: bearer("t"), wantStatus: http.StatusForbidden, wantChallenge: challengeInsufficient, wantCalls: 1,
			wantUpstream: map[string]string{},
		},
		{
			desc: "IdP 500 is retried, then 503", answer: answerStatus(http.StatusInternalServerError),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 3,
		},
		{
			desc:    "IdP 503 then 200: the retry succeeds",
			answer:  failFirst(1, http.StatusServiceUnavailable, activeAdmin()),
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 2,
		},
		{
			desc: "IdP 429 is retried", answer: failFirst(1, http.StatusTooManyRequests, activeAdmin()),
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 2,
		},
		{
			desc: "IdP 400 is definitive: not retried, 503", answer: answerStatus(http.StatusBadRequest),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "IdP 401 (our credentials refused) is 503, not 401", answer: answerStatus(http.StatusUnauthorized),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "a redirect is not followed", answer: redirectTo("/elsewhere"),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "non-JSON answer is 503", answer: answerJSON(`<html>oops</html>`),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "JSON array answer is 503", answer: answerJSON(`[{"active":true}]`),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "JSON null answer is 503", answer: answerJSON(`null`),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "trailing data after the object is 503", answer: answerJSON(`{"active":true,"grp":"admin"} {"active":true}`),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "wrong content type is 503", answer: answerWithType("text/plain", activeAdmin()),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc: "content type with charset is fine", answer: answerWithType("application/json; charset=utf-8", activeAdmin()),
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1,
		},
		{
			desc: "answer over 1 MiB is 503", answer: answerJSON(`{"active":true,"grp":"admin","pad":"` + strings.Repeat("x", 1<<20) + `"}`),
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc:       "a client-sent identity header is replaced by an empty one when the claim is missing (as in Hub)",
			answer:     answerJSON(`{"active":true,"grp":"admin"}`),
			request:    combine(bearer("t"), header("Expires-At", "9999999999"), header("Group", "root")),
			wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"Expires-At": "", "Group": "admin"},
		},
		{
			desc:    "underscore twins of forwarded headers never reach the upstream",
			answer:  answerJSON(`{"active":true,"grp":"admin","sub":"alice"}`),
			options: func(u string) map[string]any { return with(hubOptions(u), "forwardHeaders.X-User", "sub") },
			request: combine(bearer("t"), setRaw("X_user", "mallory"), setRaw("X-User", "mallory"),
				setRaw("Expires_at", "9999999999"), setRaw("X-Other_x", "kept")),
			wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"X-User": "alice", "X_user": absent, "Expires_at": absent, "Expires-At": "", "X-Other_x": "kept"},
		},
		{
			desc:       "twins of a name with too many separators to list are found by comparing every header",
			answer:     answerJSON(`{"active":true,"grp":"admin","sub":"alice"}`),
			options:    func(u string) map[string]any { return with(hubOptions(u), "forwardHeaders.A-B-C-D-E-F-G", "sub") },
			request:    combine(bearer("t"), setRaw("A_b_c-D_e-F_g", "mallory"), setRaw("A-b-c-d-e-f-g", "mallory")),
			wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"A-B-C-D-E-F-G": "alice", "A_b_c-D_e-F_g": absent, "A-b-c-d-e-f-g": absent},
		},
		{
			desc:       "every configured token carrier is removed, not only the one that carried the token",
			answer:     answerJSON(activeAdmin()),
			options:    allSources,
			target:     "/api?a=1&access_token=forged&b=2;access_token=forged",
			request:    combine(bearer("t"), header("Cookie", "theme=dark; session=forged")),
			wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"Authorization": absent, "Cookie": "theme=dark"},
			check: func(t *testing.T, f *fakeIDP, u *http.Request) {
				_, _, form := f.snapshot()
				expectEqual(t, "token", form.Get("token"), "t")
				expectEqual(t, "upstream query", u.URL.RawQuery, "a=1")
			},
		},
		{
			desc:       "forwardAuthorization keeps only the carrier that was checked",
			answer:     answerJSON(activeAdmin()),
			options:    func(u string) map[string]any { return with(allSources(u), "forwardAuthorization", "true") },
			target:     "/api?access_token=forged&a=1",
			request:    combine(bearer("t"), header("Cookie", "session=forged; theme=dark")),
			wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"Authorization": "Bearer t", "Cookie": "theme=dark"},
			check: func(t *testing.T, _ *fakeIDP, u *http.Request) {
				expectEqual(t, "upstream query", u.URL.RawQuery, "a=1")
			},
		},
		{
			desc:    "forwardHeaders render numbers, booleans, arrays, objects and nested paths",
			answer:  answerJSON(`{"active":true,"exp":4.1024448e+09,"ratio":0.25,"admin":true,"areas":["office","home"],"user":{"name":"John Snow","tags":["a"]},"empty":"","null":null}`),
			options: forwardAll,
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{
				"X-Exp": "4102444800", "X-Ratio": "0.25", "X-Admin": "true", "X-Areas": "office,home",
				"X-User": `{"name":"John Snow","tags":["a"]}`, "X-Name": "John Snow", "X-Missing": "", "X-Empty": "",
				"X-Null": "",
			},
		},
		{
			desc:       "a claim with a control character cannot be forwarded: 503",
			answer:     answerJSON(`{"active":true,"grp":"admin\r\nX-Evil: 1"}`),
			options:    func(u string) map[string]any { return with(hubOptions(u), "claims", nil) },
			request:    bearer("t"),
			wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
		{
			desc:    "forwardAuthorization keeps the header",
			answer:  answerJSON(activeAdmin()),
			options: func(u string) map[string]any { return with(hubOptions(u), "forwardAuthorization", "true") },
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"Authorization": "Bearer t"},
		},
		{
			desc:    "four forwarded headers keep their own claims across handlers and reloads",
			answer:  answerJSON(`{"active":true,"role":"role-0","sub":"sub-0","team":"team-0","mail":"mail-0"}`),
			options: fourHeaders,
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"X-Role": "role-0", "X-User": "sub-0", "X-Team": "team-0", "X-Mail": "mail-0"},
		},
		{
			desc:   "query source: token taken from the query and removed before upstream",
			answer: answerJSON(activeAdmin()),
			options: func(u string) map[string]any {
				return with(hubOptions(u), "tokenSource", map[string]any{"query": "access_token"})
			},
			target:     "/api?a=1&access_token=qtok&b=2",
			wantStatus: http.StatusOK, wantCalls: 1,
			check: func(t *testing.T, f *fakeIDP, u *http.Request) {
				_, _, form := f.snapshot()
				expectEqual(t, "token", form.Get("token"), "qtok")
				expectEqual(t, "upstream query", u.URL.RawQuery, "a=1&b=2")
			},
		},
		{
			desc:   "cookie source: token taken from the cookie and removed before upstream",
			answer: answerJSON(activeAdmin()),
			options: func(u string) map[string]any {
				return with(hubOptions(u), "tokenSource", map[string]any{"cookie": "session"})
			},
			request:    header("Cookie", "theme=dark; session=ctok"),
			wantStatus: http.StatusOK, wantCalls: 1,
			wantUpstream: map[string]string{"Cookie": "theme=dark"},
			check: func(t *testing.T, f *fakeIDP, _ *http.Request) {
				_, _, form := f.snapshot()
				expectEqual(t, "token", form.Get("token"), "ctok")
			},
		},
		{
			desc:    "usernameClaim sets the URL user for the access log",
			answer:  answerJSON(activeAdmin()),
			options: func(u string) map[string]any { return with(hubOptions(u), "usernameClaim", "username") },
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1, wantUser: "alice",
		},
		{
			desc:       "no usernameClaim: a user the client put in the URL is dropped",
			answer:     answerJSON(activeAdmin()),
			request:    combine(bearer("t"), func(r *http.Request) { r.URL.User = url.User("mallory") }),
			wantStatus: http.StatusOK, wantCalls: 1, wantUser: "",
		},
		{
			desc:   "header templates see the request; our Content-Type wins",
			answer: answerJSON(activeAdmin()),
			options: func(u string) map[string]any {
				return with(hubOptions(u), "clientConfig.headers", map[string]any{
					"X-Path": "{{ .Request.URL.Path }}", "X-Host": "{{ .Request.Host }}", "Content-Type": "text/plain", "X-Static": "plain",
				})
			},
			target:  "/orders/42",
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1,
			check: func(t *testing.T, f *fakeIDP, _ *http.Request) {
				_, last, _ := f.snapshot()
				expectEqual(t, "X-Path", last.Header.Get("X-Path"), "/orders/42")
				expectEqual(t, "X-Host", last.Header.Get("X-Host"), "example.com")
				expectEqual(t, "X-Static", last.Header.Get("X-Static"), "plain")
				expectEqual(t, "Content-Type", last.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
			},
		},
		{
			desc:    "no claims expression: every active token passes",
			answer:  answerJSON(`{"active":true,"grp":"nobody"}`),
			options: func(u string) map[string]any { return with(hubOptions(u), "claims", nil) },
			request: bearer("t"), wantStatus: http.StatusOK, wantCalls: 1,
		},
		{
			desc:    "no tokenTypeHint: the hint is not sent",
			answer:  answerJSON(activeAdmin()),
			options: func(u string) map[string]any { return with(hubOptions(u), "clientConfig.tokenTypeHint", nil) },
			request: bearer("a+b/c="), wantStatus: http.StatusOK, wantCalls: 1,
			check: func(t *testing.T, f *fakeIDP, _ *http.Request) {
				_, _, form := f.snapshot()
				expectEqual(t, "token", form.Get("token"), "a+b/c=")
				if _, sent := form["token_type_hint"]; sent {
					t.Errorf("token_type_hint sent without being configured")
				}
			},
		},
		{
			desc:    "maxRetries 0: a 500 is tried once",
			answer:  answerStatus(http.StatusInternalServerError),
			options: func(u string) map[string]any { return with(hubOptions(u), "clientConfig.maxRetries", "0") },
			request: bearer("t"), wantStatus: http.StatusServiceUnavailable, wantCalls: 1,
		},
	}
}

func forwardAll(u string) map[string]any {
	o := with(hubOptions(u), "claims", nil)
	return with(o, "forwardHeaders", map[string]any{
		"X-Exp": "exp", "X-Ratio": "ratio", "X-Admin": "admin", "X-Areas": "areas", "X-User": "user",
		"X-Name": "user.name", "X-Missing": "nope", "X-Empty": "empty", "X-Null": "null",
	})
}

// allSources is the Hub manifest with every token source configured.
func allSources(u string) map[string]any {
	return with(hubOptions(u), "tokenSource", map[string]any{
		"header": "Authorization", "headerAuthScheme": "Bearer", "query": "access_token", "cookie": "session",
	})
}

// fourHeaders forwards four claims, as the security review did on six routers.
func fourHeaders(u string) map[string]any {
	o := with(hubOptions(u), "claims", nil)
	return with(o, "forwardHeaders", map[string]any{"X-Role": "role", "X-User": "sub", "X-Team": "team", "X-Mail": "mail"})
}

// absent, as a wantUpstream value, means that the header must not reach the upstream at all; ""
// means that it arrives with an empty value.
const absent = "\x00absent"

// runScenarios runs every scenario the way Traefik uses one middleware: its first request goes
// through the handler of one router, the second through the handler of another router, built by a
// second New with the same name and configuration, and the third through a handler of a third New,
// as a reload gives. All three must give the same answer and send the same identity upstream, so
// the second and third requests, which may be served from the cache (and by the fast path), read
// verdicts the first handler computed.
func runScenarios(t *testing.T, build builder, scenarios []scenario) {
	for i, sc := range scenarios {
		sc := sc
		name := fmt.Sprintf("scenario-%d@test", i)
		t.Run(sc.desc, func(t *testing.T) {
			idp := newFakeIDP(t, sc.answer)
			options := func() map[string]any {
				if sc.options != nil {
					return sc.options(idp.srv.URL)
				}
				return hubOptions(idp.srv.URL)
			}
			up := &upstream{}
			newHandler := func() (http.Handler, func() string) {
				h, logs, err := build(t, up, options(), name)
				if err != nil {
					t.Fatalf("building the middleware: %v", err)
				}
				return h, logs
			}
			router1, logs := newHandler()
			router2, _ := newHandler()
			target := sc.target
			if target == "" {
				target = "/api"
			}
			send := func(h http.Handler) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodGet, target, nil)
				if sc.request != nil {
					sc.request(req)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			checkAnswer(t, sc, send(router1), up)
			calls, _, _ := idp.snapshot()
			if calls != sc.wantCalls {
				t.Errorf("IdP calls = %d, want %d", calls, sc.wantCalls)
			}
			if sc.check != nil {
				seen, _ := up.seen()
				sc.check(t, idp, seen)
			}
			up.reset()
			checkAnswer(t, sc, send(router2), up)
			reloaded, _ := newHandler()
			up.reset()
			checkAnswer(t, sc, send(reloaded), up)
			if strings.Contains(logs(), "tok-123") {
				t.Errorf("the log contains the token:\n%s", logs())
			}
		})
	}
}

func checkAnswer(t *testing.T, sc scenario, rec *httptest.ResponseRecorder, up *upstream) {
	t.Helper()
	if rec.Code != sc.wantStatus {
		t.Fatalf("status = %d, want %d (body %q)", rec.Code, sc.wantStatus, rec.Body.String())
	}
	expectEqual(t, "WWW-Authenticate", rec.Header().Get("WWW-Authenticate"), sc.wantChallenge)
	seen, hits := up.seen()
	if sc.wantStatus != http.StatusOK {
		if hits != 0 {
			t.Errorf("a denied request reached the upstream")
		}
		// RFC 6750 answers carry only the status text: no IdP detail reaches the client.
		expectEqual(t, "body", strings.TrimSpace(rec.Body.String()), http.StatusText(sc.wantStatus))
		return
	}
	if hits != 1 {
		t.Fatalf("upstream hits = %d, want 1", hits)
	}
	expectUpstream(t, seen.Header, sc.wantUpstream)
	user := ""
	if seen.URL.User != nil {
		user = seen.URL.User.Username()
	}
	expectEqual(t, "URL user", user, sc.wantUser)
}

// decodeJSONOptions turns a JSON document into provider options, as the Kubernetes CRD path does.
func decodeJSONOptions(t *testing.T, doc string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("decoding options: %v", err)
	}
	return m
}
