package oauthintrospection

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

func TestTokenSourceExtract(t *testing.T) {
	all := tokenSource{header: "Authorization", scheme: "Bearer", query: "access_token", cookie: "tok", maxLen: 64}
	testCases := []struct {
		desc       string
		source     tokenSource
		target     string
		headers    [][2]string
		wantToken  string
		wantFrom   int
		wantReason string
	}{
		{desc: "bearer header", source: all, headers: [][2]string{{"Authorization", "Bearer abc.DEF-123"}}, wantToken: "abc.DEF-123", wantFrom: fromHeader},
		{desc: "scheme is case-insensitive", source: all, headers: [][2]string{{"Authorization", "bEaReR abc"}}, wantToken: "abc", wantFrom: fromHeader},
		{desc: "several spaces after the scheme", source: all, headers: [][2]string{{"Authorization", "Bearer    abc"}}, wantToken: "abc", wantFrom: fromHeader},
		{desc: "scheme alone is no token", source: tokenSource{header: "Authorization", scheme: "Bearer", maxLen: 64}, headers: [][2]string{{"Authorization", "Bearer"}}, wantReason: "no token"},
		{desc: "scheme and blanks is no token", source: tokenSource{header: "Authorization", scheme: "Bearer", maxLen: 64}, headers: [][2]string{{"Authorization", "Bearer   "}}, wantReason: "no token"},
		{desc: "scheme alone falls through to the query", source: all, target: "/?access_token=q1", headers: [][2]string{{"Authorization", "Bearer"}}, wantToken: "q1", wantFrom: fromQuery},
		{desc: "other scheme is malformed", source: all, headers: [][2]string{{"Authorization", "Basic dXNlcjpwYXNz"}}, wantFrom: fromHeader, wantReason: "Authorization header has another auth scheme"},
		{desc: "scheme glued to token is malformed", source: all, headers: [][2]string{{"Authorization", "Bearerabc"}}, wantFrom: fromHeader, wantReason: "Authorization header has another auth scheme"},
		{desc: "Bearer Bearer x is malformed", source: all, headers: [][2]string{{"Authorization", "Bearer Bearer x"}}, wantFrom: fromHeader, wantReason: "token has a character outside visible ASCII"},
		{desc: "two Authorization headers are malformed", source: all, headers: [][2]string{{"Authorization", "Bearer a"}, {"Authorization", "Bearer b"}}, wantFrom: fromHeader, wantReason: "several Authorization headers"},
		{desc: "header wins over query", source: all, target: "/?access_token=q1", headers: [][2]string{{"Authorization", "Bearer h1"}}, wantToken: "h1", wantFrom: fromHeader},
		{desc: "query wins over cookie", source: all, target: "/?access_token=q1", headers: [][2]string{{"Cookie", "tok=c1"}}, wantToken: "q1", wantFrom: fromQuery},
		{desc: "cookie", source: all, headers: [][2]string{{"Cookie", "a=b; tok=c1; d=e"}}, wantToken: "c1", wantFrom: fromCookie},
		{desc: "duplicate cookies are malformed", source: all, headers: [][2]string{{"Cookie", "tok=c1; tok=c2"}}, wantFrom: fromCookie, wantReason: "several cookies"},
		{desc: "empty cookie is no token", source: all, headers: [][2]string{{"Cookie", "tok="}}, wantReason: "no token"},
		{desc: "two query values are malformed", source: all, target: "/?access_token=a&access_token=b", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "empty query value is no token", source: all, target: "/?access_token=", wantReason: "no token"},
		{desc: "header without scheme is the whole value", source: tokenSource{header: "X-Api-Token", maxLen: 64}, headers: [][2]string{{"X-Api-Token", "raw-token"}}, wantToken: "raw-token", wantFrom: fromHeader},
		{desc: "nothing at all", source: all, wantReason: "no token"},
		{desc: "too long", source: all, headers: [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", 65)}}, wantFrom: fromHeader, wantReason: "token longer than tokenSource.maxLength"},
		{desc: "exactly max length", source: all, headers: [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", 64)}}, wantToken: strings.Repeat("a", 64), wantFrom: fromHeader},
		{desc: "NUL in a query token", source: all, target: "/?access_token=a%00b", wantFrom: fromQuery, wantReason: "token has a character outside visible ASCII"},
		{desc: "LF in a query token", source: all, target: "/?access_token=a%0Ab", wantFrom: fromQuery, wantReason: "token has a character outside visible ASCII"},
		{desc: "non-ASCII token", source: all, headers: [][2]string{{"Authorization", "Bearer t\u00f6ken"}}, wantFrom: fromHeader, wantReason: "token has a character outside visible ASCII"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			target := test.target
			if target == "" {
				target = "/"
			}
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for _, h := range test.headers {
				req.Header.Add(h[0], h[1])
			}
			source := test.source
			token, from, reason := source.extract(req)
			if token != test.wantToken || from != test.wantFrom || reason != test.wantReason {
				t.Errorf("extract() = (%q, %d, %q), want (%q, %d, %q)", token, from, reason, test.wantToken, test.wantFrom, test.wantReason)
			}
		})
	}
}

func TestTokenSourceStrip(t *testing.T) {
	source := tokenSource{header: "Authorization", scheme: "Bearer", query: "access_token", cookie: "tok", maxLen: 64}
	testCases := []struct {
		desc       string
		target     string
		cookie     string
		from       int
		wantQuery  string
		wantCookie string
		wantAuth   bool
	}{
		{desc: "header", target: "/p?a=1", from: fromHeader, wantQuery: "a=1"},
		{desc: "query keeps the other pairs as they were", target: "/p?a=%20x&access_token=t&b", from: fromQuery, wantQuery: "a=%20x&b", wantAuth: true},
		{desc: "query with an encoded name", target: "/p?access%5Ftoken=t&b=2", from: fromQuery, wantQuery: "b=2", wantAuth: true},
		{desc: "cookie keeps the others", target: "/p", cookie: "a=1; tok=secret; b=2", from: fromCookie, wantCookie: "a=1; b=2", wantAuth: true},
		{desc: "cookie alone removes the header", target: "/p", cookie: "tok=secret", from: fromCookie, wantAuth: true},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, test.target, nil)
			req.Header.Set("Authorization", "Bearer t")
			if test.cookie != "" {
				req.Header.Set("Cookie", test.cookie)
			}
			source.strip(req, test.from)
			if req.URL.RawQuery != test.wantQuery && test.from == fromQuery {
				t.Errorf("query = %q, want %q", req.URL.RawQuery, test.wantQuery)
			}
			if got := req.Header.Get("Cookie"); got != test.wantCookie {
				t.Errorf("cookie = %q, want %q", got, test.wantCookie)
			}
			if got := req.Header.Get("Authorization") != ""; got != test.wantAuth {
				t.Errorf("authorization present = %v, want %v", got, test.wantAuth)
			}
			if test.from == fromQuery && strings.Contains(req.RequestURI, "access") {
				t.Errorf("RequestURI still carries the token: %q", req.RequestURI)
			}
		})
	}
}
