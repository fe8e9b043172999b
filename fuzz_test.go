//go:build !yaegi

package oauthintrospection

// Fuzz targets of the hardening suite. Compiled only: Yaegi cannot run fuzz targets.
//
//	go test -run '^$' -fuzz '^FuzzTokenExtract$' -fuzztime 60s .
//	go test -run '^$' -fuzz '^FuzzNewConfig$' -fuzztime 60s .

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzSources are the token source configurations FuzzTokenExtract runs every input through.
var fuzzSources = []tokenSource{
	fuzzSource(TokenSource{Header: "Authorization", HeaderAuthScheme: "Bearer", Query: "access_token", Cookie: "session", MaxLength: 64}),
	fuzzSource(TokenSource{Header: "X-Api-Token", Query: "access_token", Cookie: "session"}),
}

func fuzzSource(ts TokenSource) tokenSource {
	src, err := compileTokenSource(ts)
	if err != nil {
		panic(err)
	}
	return src
}

// fuzzRequest builds a request as the HTTP server hands it over, with header values as they are:
// h2 makes a second copy of the header, cookie is the raw Cookie header.
func fuzzRequest(header, h1, h2, rawQuery, cookie string) *http.Request {
	req := &http.Request{
		Method: http.MethodGet,
		URL:    &url.URL{Path: "/api", RawQuery: rawQuery},
		Header: http.Header{},
		Host:   "example.com",
	}
	req.RequestURI = req.URL.RequestURI()
	if h1 != "" || h2 != "" {
		req.Header[header] = []string{h1}
	}
	if h2 != "" {
		req.Header[header] = append(req.Header[header], h2)
	}
	if cookie != "" {
		req.Header["Cookie"] = []string{cookie}
	}
	return req
}

// extractReasons are every reason extract may give for src: fixed texts that cannot echo the input.
func extractReasons(src tokenSource) map[string]bool {
	return map[string]bool{
		"no token":                                     true,
		"several " + src.header + " headers":           true,
		src.header + " header has another auth scheme": true,
		"several query parameters":                     true,
		"several cookies":                              true,
		"query parameter cannot be decoded":            true,
		"cookie value is malformed":                    true,
		"token longer than tokenSource.maxLength":      true,
		"token has a character outside visible ASCII":  true,
	}
}

func FuzzTokenExtract(f *testing.F) {
	seeds := [][4]string{
		{"Bearer abc", "", "", ""},
		{"bearer abc.DEF-123_~+/=", "", "a=1&b", ""},
		{"Bearer", "", "access_token=q1", ""},
		{"Bearer   ", "", "", "session=c1"},
		{"Bearer Bearer x", "", "", ""},
		{"Bearerabc", "", "", ""},
		{"Basic dXNlcjpwYXNz", "", "access_token=q", ""},
		{"Bearer a", "Bearer b", "", ""},
		{"Bearer a", "", "access_token=q", "session=c"},
		{"", "", "access_token=a%00b", ""},
		{"", "", "access_token=a%0D%0A", ""},
		{"", "", "access_token=a&access_token=b", ""},
		{"", "", "access%5Ftoken=x", ""},
		{"", "", "access_token=%zz", ""},
		{"", "", "access_token=", "session=c1"},
		{"", "", ";;&&==", "session=; other=x"},
		{"", "", "", "session=c1; session=c2"},
		{"", "", "access_token=good&access_token=forged%zz", ""},
		{"", "", "access_token=good&x=1;access_token=forged", ""},
		{"", "", "", `session=good; session=bad"value`},
		{"", "", "", `session="quoted"`},
		{"", "", "", "session=c\u00f6"},
		{"Bearer tok\r\n", "", "", ""},
		{"Bearer tok\x00", "", "", ""},
		{"Bearer t\u00f6ken", "", "", ""},
		{"Bearer tok\u00a0", "", "", ""},
		{"\tBearer tok ", "", "", ""},
		{"Bearer " + strings.Repeat("a", 64), "", "", ""},
		{"Bearer " + strings.Repeat("a", 65), "", "", ""},
		{"", "", "access_token=" + strings.Repeat("q", 5000), ""},
		{"\x00", "\x00", "\x00", "\x00"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, h1, h2, rawQuery, cookie string) {
		for _, src := range fuzzSources {
			src := src
			token, from, reason := extractToken(&src, fuzzRequest(src.header, h1, h2, rawQuery, cookie))
			if reason != "" {
				if token != "" {
					t.Fatalf("extract gave token %q with reason %q", token, reason)
				}
				if !extractReasons(src)[reason] {
					t.Fatalf("unknown reason %q (a reason must never echo the request)", reason)
				}
			} else {
				if token == "" || from == fromNone {
					t.Fatalf("extract gave an empty token (from %d) without a reason", from)
				}
				if len(token) > src.maxLen {
					t.Fatalf("token of %d bytes, over maxLength %d", len(token), src.maxLen)
				}
				for i := 0; i < len(token); i++ {
					if token[i] < 0x21 || token[i] > 0x7e {
						t.Fatalf("token %q has byte %#x outside visible ASCII", token, token[i])
					}
				}
			}

			// The fast path on an empty cache takes nothing and leaves the request untouched.
			fp := &fastPath{header: src.header, maxHeader: src.maxLen, drop: []string{"X_user", src.header},
				withQuery: src.query != "", withCookie: src.cookie != "", entries: map[cacheKey]*cacheEntry{}, mu: &sync.RWMutex{}}
			if src.scheme != "" {
				fp.prefix = src.scheme + " "
			}
			fp.maxHeader += len(fp.prefix)
			fp.other = fp.withQuery || fp.withCookie // as newFastPath sets it
			req := fuzzRequest(src.header, h1, h2, rawQuery, cookie)
			req.Header["X-User"] = []string{"mallory"}
			header, target := req.Header.Clone(), *req.URL
			took := fastHit(fp, req)
			if took == fastPassed {
				t.Fatalf("the fast path took a request on an empty cache")
			}
			if !reflect.DeepEqual(req.Header, header) || *req.URL != target {
				t.Fatalf("a fast-path miss modified the request")
			}
			// A token the fast path hands to serveUncached must be the one extract reads.
			if took == fastUncached {
				handed := req.Header[fp.header][0][len(fp.prefix):]
				if reason != "" || token != handed || from != fromHeader {
					t.Fatalf("the fast path handed over token %q, serve reads (%q, %d, %q)", handed, token, from, reason)
				}
			}

			// With the token the fast path would read cached as allowed, a hit must be a request
			// that serve would read the same token from: the fast path may only be stricter.
			vals := req.Header[src.header]
			if len(vals) != 1 || len(vals[0]) < len(fp.prefix) {
				continue
			}
			candidate := vals[0][len(fp.prefix):]
			now := time.Now().Unix()
			fp.entries[sha256.Sum256([]byte(candidate))] = &cacheEntry{
				v:          &verdict{exp: math.MaxInt64, nbf: math.MinInt64, names: []string{"X-User"}, values: []string{"alice"}},
				freshUntil: now + 60,
				passFrom:   math.MinInt64,
				passUntil:  now + 60,
			}
			if fastHit(fp, fuzzRequest(src.header, h1, h2, rawQuery, cookie)) == fastPassed {
				if reason != "" || token != candidate || from != fromHeader {
					t.Fatalf("the fast path accepted token %q, serve reads (%q, %d, %q)", candidate, token, from, reason)
				}
			}
		}
	})
}

// fuzzConfigKeys are the option keys FuzzNewConfig fills, in the order of its first string arguments.
var fuzzConfigKeys = []string{
	"tokenSource.header", "tokenSource.headerAuthScheme", "tokenSource.query", "tokenSource.cookie",
	"tokenSource.maxLength", "clientConfig.url", "clientConfig.timeoutSeconds", "clientConfig.maxRetries",
	"clientConfig.tls.ca", "clientConfig.tls.cert", "clientConfig.tls.key", "clientConfig.tls.insecureSkipVerify",
	"clientConfig.clientId", "clientConfig.clientSecret", "clientConfig.authMethod", "clientConfig.privateKey",
	"clientConfig.signingAlgorithm", "claims", "usernameClaim", "forwardAuthorization", "cache.ttlSeconds",
	"cache.maxEntries", "cache.negativeTtlSeconds", "cache.staleIfErrorSeconds",
}

// Indexes in fuzzConfigKeys that the serve step of FuzzNewConfig overrides, and the secret.
const (
	fuzzURL     = 5
	fuzzTimeout = 6
	fuzzRetries = 7
	fuzzSecret  = 13
)

// fuzzPEM is a self-signed certificate and its EC key, for seeds that configure TLS or
// private_key_jwt.
func fuzzPEM(f *testing.F) (certPEM, keyPEM string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fuzz"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// fuzzOptions builds file-provider options (every scalar a string) from the fuzzed values. An empty
// value leaves the key out, so that CreateConfig's default applies. TLS values that are not PEM
// content become an unreadable path: the fuzzer must not read files (or /dev/zero).
func fuzzOptions(values []string, hdrName, hdrValue, fwdName, fwdClaim string) map[string]any {
	options := map[string]any{}
	for i, key := range fuzzConfigKeys {
		v := values[i]
		if v == "" {
			continue
		}
		if strings.HasPrefix(key, "clientConfig.tls.") && key != "clientConfig.tls.insecureSkipVerify" && !strings.Contains(v, "-----BEGIN ") {
			v = "/nonexistent/fuzz.pem"
		}
		// New allocates the cache ring up front (32 bytes an entry): up to maxCacheEntries it is
		// valid but slow, so the fuzzer uses at most 100,000 and keeps testing the upper bound.
		if n, err := strconv.ParseInt(v, 0, 64); err == nil && key == "cache.maxEntries" && n > 100000 && n <= maxCacheEntries {
			v = "100000"
		}
		options = with(options, key, v)
	}
	if hdrName != "" {
		options = with(options, "clientConfig.headers", map[string]any{hdrName: hdrValue})
	}
	if fwdName != "" {
		options = with(options, "forwardHeaders", map[string]any{fwdName: fwdClaim})
	}
	return options
}

// fuzzSeed is one realistic or broken configuration for FuzzNewConfig.
type fuzzSeed struct {
	values                               map[string]string // by fuzzConfigKeys name
	hdrName, hdrValue, fwdName, fwdClaim string
	token                                string
}

func (s fuzzSeed) args() []string {
	out := make([]string, 0, len(fuzzConfigKeys)+5)
	for _, key := range fuzzConfigKeys {
		out = append(out, s.values[key])
	}
	return append(out, s.hdrName, s.hdrValue, s.fwdName, s.fwdClaim, s.token)
}

func FuzzNewConfig(f *testing.F) {
	certPEM, keyPEM := fuzzPEM(f)
	seeds := []fuzzSeed{
		{ // the Hub manifest of the README
			values: map[string]string{"tokenSource.header": "Authorization", "tokenSource.headerAuthScheme": "Bearer",
				"clientConfig.url": "https://idp.example/introspect", "clientConfig.timeoutSeconds": "2", "clientConfig.maxRetries": "2",
				"claims": "Equals(`grp`, `admin`)"},
			hdrName: "Authorization", hdrValue: "Basic ZXhhbXBsZTpleGFtcGxl", fwdName: "Group", fwdClaim: "grp", token: "tok",
		},
		{
			values: map[string]string{"tokenSource.query": "access_token", "tokenSource.cookie": "session", "tokenSource.maxLength": "10",
				"clientConfig.url": "http://127.0.0.1:9/x", "clientConfig.timeoutSeconds": "300", "clientConfig.maxRetries": "10",
				"clientConfig.tls.insecureSkipVerify": "true", "clientConfig.clientId": "gateway", "clientConfig.clientSecret": "S3CR3T-post",
				"clientConfig.authMethod": "client_secret_post", "claims": "OneOf(`aud`, `a`, `b`) || !Prefix(`sub`, `svc-`)",
				"usernameClaim": "user.name", "forwardAuthorization": "true", "cache.ttlSeconds": "60", "cache.maxEntries": "100",
				"cache.negativeTtlSeconds": "30", "cache.staleIfErrorSeconds": "600"},
			hdrName: "X-Path", hdrValue: "{{ .Request.URL.Path }}", fwdName: "X-User", fwdClaim: "user\\.name.first", token: "t0k3n",
		},
		{
			values: map[string]string{"tokenSource.header": "X-Api-Key", "tokenSource.maxLength": "4096", "clientConfig.url": "http://idp/x",
				"clientConfig.timeoutSeconds": "1", "clientConfig.maxRetries": "0", "clientConfig.tls.ca": certPEM,
				"clientConfig.tls.cert": certPEM, "clientConfig.tls.key": keyPEM, "clientConfig.tls.insecureSkipVerify": "false",
				"clientConfig.clientId": "gateway", "clientConfig.authMethod": "tls_client_auth", "usernameClaim": "sub",
				"cache.ttlSeconds": "0"},
			hdrName: "X-Tenant", hdrValue: `{{ .Request.Header.Get "X-Tenant" }}`, fwdName: "Expires-At", fwdClaim: "exp", token: "x",
		},
		{
			values: map[string]string{"tokenSource.header": "Authorization", "tokenSource.headerAuthScheme": "Bearer",
				"clientConfig.url": "https://idp/x", "clientConfig.clientId": "gateway", "clientConfig.authMethod": "private_key_jwt",
				"clientConfig.privateKey": keyPEM, "clientConfig.signingAlgorithm": "ES256"},
			token: "jwt-client",
		},
		{
			values: map[string]string{"tokenSource.header": "Authorization", "tokenSource.headerAuthScheme": "Bearer",
				"clientConfig.url": "https://idp/x", "clientConfig.clientId": "gateway", "clientConfig.clientSecret": "S3CR3T-basic:%x"},
			token: "basic-client",
		},
		{
			values: map[string]string{"tokenSource.header": "Authorization", "tokenSource.headerAuthScheme": "Bearer",
				"tokenSource.maxLength": "-1", "clientConfig.url": "ftp://idp/x", "clientConfig.timeoutSeconds": "-1",
				"clientConfig.maxRetries": "99", "clientConfig.tls.ca": "/etc/passwd", "clientConfig.tls.key": keyPEM,
				"clientConfig.tls.insecureSkipVerify": "maybe", "clientConfig.clientSecret": "S3CR3T-orphan",
				"clientConfig.authMethod": "client_secret_jwt", "clientConfig.privateKey": certPEM, "clientConfig.signingAlgorithm": "HS256",
				"claims": "Equals(`a`,", "usernameClaim": ".", "forwardAuthorization": "yes", "cache.ttlSeconds": "-5",
				"cache.maxEntries": "-1", "cache.negativeTtlSeconds": "999999", "cache.staleIfErrorSeconds": "x"},
			hdrName: "Bad Name", hdrValue: "{{ .Nope", fwdName: "X A", fwdClaim: "a..b", token: "a b",
		},
		{
			values: map[string]string{"tokenSource.header": "Authorization", "tokenSource.headerAuthScheme": "Bearer",
				"tokenSource.maxLength": "99999999999999999999", "clientConfig.url": "http://user:pw@idp/x",
				"clientConfig.timeoutSeconds": "five", "clientConfig.maxRetries": "1e3", "clientConfig.tls.cert": certPEM,
				"clientConfig.clientId": "gateway", "clientConfig.authMethod": "private_key_jwt", "clientConfig.privateKey": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
				"cache.ttlSeconds": "86401", "cache.maxEntries": "10000001"},
			hdrName: "X-Ctl", hdrValue: "a\r\nb", token: "\x00",
		},
		{
			values:  map[string]string{"tokenSource.header": "Authorization", "clientConfig.url": "http:///x"},
			hdrName: "X-Exec", hdrValue: `{{ .Request.URL.Parse "%zz" }}`, token: strings.Repeat("t", 5000),
		},
	}
	for _, s := range seeds {
		a := s.args()
		f.Add(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14],
			a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], a[23], a[24], a[25], a[26], a[27], a[28])
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String() + "/introspect"
	l.Close()

	f.Fuzz(func(t *testing.T, header, scheme, query, cookie, maxLength, idpURL, timeout, retries,
		ca, cert, key, insecure, clientID, secret, authMethod, privateKey, alg,
		claims, username, forwardAuth, ttl, maxEntries, negTTL, stale,
		hdrName, hdrValue, fwdName, fwdClaim, token string,
	) {
		values := []string{header, scheme, query, cookie, maxLength, idpURL, timeout, retries,
			ca, cert, key, insecure, clientID, secret, authMethod, privateKey, alg,
			claims, username, forwardAuth, ttl, maxEntries, negTTL, stale}
		cfg := CreateConfig()
		if err := decodeOptions(fuzzOptions(values, hdrName, hdrValue, fwdName, fwdClaim), cfg); err != nil {
			return // Traefik refuses the configuration before New
		}
		h, err := New(context.Background(), &upstream{}, cfg, "fuzz@test")
		switch {
		case err != nil && strings.Contains(err.Error(), "internal error"):
			t.Fatalf("New panicked: %v", err)
		case err == nil && h == nil:
			t.Fatalf("New gave neither a handler nor an error")
		case err != nil && strings.HasPrefix(secret, "S3CR3T") && strings.Contains(err.Error(), secret) && !fuzzEchoes(values, secret):
			t.Fatalf("New's error holds the client secret: %v", err)
		}

		// The same configuration against an IdP that refuses connections, within 1 s and one
		// attempt, so that a fuzzed timeout or retry count cannot slow the fuzzer down.
		values[fuzzURL], values[fuzzTimeout], values[fuzzRetries] = closedURL, "1", "0"
		cfg = CreateConfig()
		if err := decodeOptions(fuzzOptions(values, hdrName, hdrValue, fwdName, fwdClaim), cfg); err != nil {
			return
		}
		up := &upstream{}
		h, errServe := New(context.Background(), up, cfg, "fuzz-serve@test")
		if errServe != nil {
			if err == nil {
				t.Fatalf("a valid configuration with another valid url, timeout and retries was refused: %v", errServe)
			}
			return
		}
		req := httptest.NewRequest(http.MethodGet, "/api?"+url.Values{query: {token}}.Encode(), nil)
		req.Header[http.CanonicalHeaderKey(header)] = []string{strings.TrimSpace(scheme + " " + token)}
		req.Header["Cookie"] = []string{cookie + "=" + token}
		req.Header["X-Tenant"] = []string{token}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("with the IdP down: status %d, want 401 or 503", rec.Code)
		}
		if _, hits := up.seen(); hits != 0 {
			t.Fatalf("with the IdP down, a request reached the upstream")
		}
	})
}

// fuzzEchoes reports whether a value other than the secret holds it, so that an error quoting that
// value (an unknown authMethod, say) is not mistaken for a leak of the secret.
func fuzzEchoes(values []string, secret string) bool {
	for i, v := range values {
		if i != fuzzSecret && strings.Contains(v, secret) {
			return true
		}
	}
	return false
}
