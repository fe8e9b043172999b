package oauthintrospection

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

func TestTokenSourceExtract(t *testing.T) {
	all := mustSource(t, TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer", Query: "access_token", Cookie: "tok", MaxLength: 64})
	headerOnly := mustSource(t, TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer", MaxLength: 64})
	testCases := []struct {
		desc       string
		source     tokenSource
		target     string
		headers    [][2]string
		wantToken  string
		wantFrom   tokenFrom
		wantReason string
	}{
		{desc: "bearer header", source: all, headers: [][2]string{{"Authorization", "Bearer abc.DEF-123"}}, wantToken: "abc.DEF-123", wantFrom: fromHeader},
		{desc: "scheme is case-insensitive", source: all, headers: [][2]string{{"Authorization", "bEaReR abc"}}, wantToken: "abc", wantFrom: fromHeader},
		{desc: "several spaces after the scheme", source: all, headers: [][2]string{{"Authorization", "Bearer    abc"}}, wantToken: "abc", wantFrom: fromHeader},
		{desc: "scheme alone is no token", source: headerOnly, headers: [][2]string{{"Authorization", "Bearer"}}, wantReason: "no token"},
		{desc: "scheme and blanks is no token", source: headerOnly, headers: [][2]string{{"Authorization", "Bearer   "}}, wantReason: "no token"},
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
		{desc: "header without scheme is the whole value", source: mustSource(t, TokenSource{Header: "X-Api-Token", MaxLength: 64}), headers: [][2]string{{"X-Api-Token", "raw-token"}}, wantToken: "raw-token", wantFrom: fromHeader},
		{desc: "nothing at all", source: all, wantReason: "no token"},
		{desc: "too long", source: all, headers: [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", 65)}}, wantFrom: fromHeader, wantReason: "token longer than tokenSource.maxLength"},
		{desc: "exactly max length", source: all, headers: [][2]string{{"Authorization", "Bearer " + strings.Repeat("a", 64)}}, wantToken: strings.Repeat("a", 64), wantFrom: fromHeader},
		{desc: "NUL in a query token", source: all, target: "/?access_token=a%00b", wantFrom: fromQuery, wantReason: "token has a character outside visible ASCII"},
		{desc: "LF in a query token", source: all, target: "/?access_token=a%0Ab", wantFrom: fromQuery, wantReason: "token has a character outside visible ASCII"},
		{desc: "non-ASCII token", source: all, headers: [][2]string{{"Authorization", "Bearer t\u00f6ken"}}, wantFrom: fromHeader, wantReason: "token has a character outside visible ASCII"},
		// Copies are counted on the raw request: Go's parsers drop some of them silently.
		{desc: "a second query copy Go cannot decode is still a copy", source: all, target: "/?access_token=good&access_token=forged%zz", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a second query copy with a semicolon is still a copy", source: all, target: "/?access_token=good&access_token=x;y", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a copy hidden behind a semicolon is a copy", source: all, target: "/?access_token=good&a=1;access_token=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a single copy with a semicolon is malformed", source: all, target: "/?access_token=good;access_token=forged", wantFrom: fromQuery, wantReason: "query parameter cannot be decoded"},
		{desc: "a single copy Go cannot decode is malformed", source: all, target: "/?access_token=go%zzod", wantFrom: fromQuery, wantReason: "query parameter cannot be decoded"},
		{desc: "an encoded name is a copy", source: all, target: "/?access_token=good&access%5Ftoken=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "another parameter that cannot be decoded is ignored", source: all, target: "/?x=%zz&access_token=good", wantToken: "good", wantFrom: fromQuery},
		{desc: "a second cookie with an invalid value is still a copy", source: all, headers: [][2]string{{"Cookie", `tok=good; tok=bad"value`}}, wantFrom: fromCookie, wantReason: "several cookies"},
		{desc: "a copy in a second Cookie header is a copy", source: all, headers: [][2]string{{"Cookie", "tok=good"}, {"Cookie", "tok=forged"}}, wantFrom: fromCookie, wantReason: "several cookies"},
		{desc: "a cookie value with a quote inside is malformed", source: all, headers: [][2]string{{"Cookie", `tok=go"od`}}, wantFrom: fromCookie, wantReason: "cookie value is malformed"},
		{desc: "a quoted cookie value is unquoted", source: all, headers: [][2]string{{"Cookie", `tok="good"`}}, wantToken: "good", wantFrom: fromCookie},
		{desc: "an empty quoted cookie is no token", source: all, headers: [][2]string{{"Cookie", `tok=""`}}, wantReason: "no token"},
		{desc: "an unconfigured query is never read", source: headerOnly, target: "/?=good&access_token=good", wantReason: "no token"},
		// A name some backend reads as the configured one is a copy (PHP, ASP.NET Core).
		{desc: "a query name in other case is a copy", source: all, target: "/?access_token=good&ACCESS_TOKEN=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a query name with a dot is a copy", source: all, target: "/?access_token=good&access.token=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a query name with a space is a copy", source: all, target: "/?access_token=good&access+token=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a query name with a bracket is a copy", source: all, target: "/?access_token=good&access[token=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a query name with a leading blank is a copy", source: all, target: "/?access_token=good&%20access_token=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a query name cut by a NUL is a copy", source: all, target: "/?access_token=good&access_token%00x=forged", wantFrom: fromQuery, wantReason: "several query parameters"},
		{desc: "a folded query name alone is the parameter", source: all, target: "/?Access.Token=good", wantToken: "good", wantFrom: fromQuery},
		{desc: "a cookie name in other case is a copy", source: all, headers: [][2]string{{"Cookie", "TOK=forged; tok=good"}}, wantFrom: fromCookie, wantReason: "several cookies"},
		{desc: "a cookie hidden behind a comma is malformed", source: all, headers: [][2]string{{"Cookie", "tok=good; a=1, tok=forged"}}, wantFrom: fromCookie, wantReason: "cookie value is malformed"},
		{desc: "a cookie value with a comma is malformed", source: all, headers: [][2]string{{"Cookie", "tok=good,x=1"}}, wantFrom: fromCookie, wantReason: "cookie value is malformed"},
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
			token, from, reason := extractToken(&source, req)
			if token != test.wantToken || from != test.wantFrom || reason != test.wantReason {
				t.Errorf("extract() = (%q, %d, %q), want (%q, %d, %q)", token, from, reason, test.wantToken, test.wantFrom, test.wantReason)
			}
		})
	}
}

// TestTokenSourceStripCarriers checks that every configured carrier is removed, every copy of it,
// but the one that carried the checked token when forwardAuthorization keeps it.
func TestTokenSourceStripCarriers(t *testing.T) {
	source := mustSource(t, TokenSource{Header: "X-Api-Key", Query: "access_token", Cookie: "tok", MaxLength: 64})
	testCases := []struct {
		desc       string
		target     string
		cookie     string
		keep       tokenFrom
		wantQuery  string
		wantCookie string
		wantHeader bool
	}{
		{desc: "nothing kept", target: "/p?a=1&access_token=x", cookie: "a=1; tok=x", keep: fromNone, wantQuery: "a=1", wantCookie: "a=1"},
		{desc: "the header kept", target: "/p?a=1&access_token=forged", cookie: "tok=forged; b=2", keep: fromHeader, wantQuery: "a=1", wantCookie: "b=2", wantHeader: true},
		{desc: "the query kept", target: "/p?a=%20x&access_token=t&b", cookie: "tok=forged", keep: fromQuery, wantQuery: "a=%20x&access_token=t&b"},
		{desc: "the cookie kept", target: "/p?access%5Ftoken=forged&b=2", cookie: "a=1; tok=t; b=2", keep: fromCookie, wantQuery: "b=2", wantCookie: "a=1; tok=t; b=2"},
		{desc: "every query copy goes, undecodable and hidden ones too", target: "/p?access_token=a&access_token=b%zz&c=1;access_token=d&e=5", keep: fromNone, wantQuery: "e=5"},
		{desc: "every cookie copy goes", target: "/p", cookie: `tok=a; x=1; tok=b"c`, keep: fromNone, wantCookie: "x=1"},
		{desc: "no Cookie header is left when only carriers were in it", target: "/p", cookie: "tok=a; TOK=b", keep: fromNone, wantCookie: absent},
		{desc: "names a backend folds go too", target: "/p?ACCESS.TOKEN=x&access+token=y&%20access_token=z&access_token%00=w&k=1", cookie: "TOK=a; x=1; y=2, tok=b", keep: fromNone, wantQuery: "k=1", wantCookie: "x=1"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, test.target, nil)
			req.Header.Set("X-Api-Key", "t")
			req.Header["X_api_key"] = []string{"forged"}
			req.Header["X-Api_key"] = []string{"forged"}
			if test.cookie != "" {
				req.Header.Set("Cookie", test.cookie)
			}
			stripCarriers(&source, req, test.keep)
			expectEqual(t, "query", req.URL.RawQuery, test.wantQuery)
			if test.wantCookie == absent {
				expectUpstream(t, req.Header, map[string]string{"Cookie": absent})
			} else {
				expectEqual(t, "cookie", req.Header.Get("Cookie"), test.wantCookie)
			}
			if got := req.Header.Get("X-Api-Key") != ""; got != test.wantHeader {
				t.Errorf("header present = %v, want %v", got, test.wantHeader)
			}
			for _, twin := range []string{"X_api_key", "X-Api_key"} {
				if _, there := req.Header[twin]; there {
					t.Errorf("the twin %s of the token header reached upstream", twin)
				}
			}
			if test.keep != fromQuery && strings.Contains(req.RequestURI, "access") {
				t.Errorf("RequestURI still carries a token: %q", req.RequestURI)
			}
		})
	}
}

// mustSource compiles ts as New does.
func mustSource(t *testing.T, ts TokenSource) tokenSource {
	t.Helper()
	src, err := compileTokenSource(ts)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustTwins(t *testing.T, name string) []string {
	twins, listed := headerTwins(name)
	if !listed {
		t.Fatalf("no twins listed for %s", name)
	}
	return twins
}

// TestHeaderTwins pins the spellings a CGI-style backend reads as one header.
func TestHeaderTwins(t *testing.T) {
	testCases := []struct {
		name   string
		want   []string
		listed bool
	}{
		{name: "Group", want: []string{"Group"}, listed: true},
		{name: "X-User", want: []string{"X-User", "X_user"}, listed: true},
		{name: "X_user", want: []string{"X-User", "X_user"}, listed: true},
		{name: "X-Forwarded-User", want: []string{"X-Forwarded-User", "X_forwarded-User", "X-Forwarded_user", "X_forwarded_user"}, listed: true},
		{name: "A-B-C-D-E-F", listed: true},
		{name: "A-B-C-D-E-F-G", listed: false},
	}
	for _, test := range testCases {
		t.Run(test.name, func(t *testing.T) {
			got, listed := headerTwins(test.name)
			if listed != test.listed {
				t.Fatalf("listed = %v, want %v", listed, test.listed)
			}
			if test.want != nil && strings.Join(got, " ") != strings.Join(test.want, " ") {
				t.Errorf("twins = %v, want %v", got, test.want)
			}
			if test.name == "A-B-C-D-E-F" && len(got) != 32 {
				t.Errorf("%d twins, want 32", len(got))
			}
		})
	}
}
