package oauthintrospection

// The configuration refusal tables: what New refuses, and the error that names the field.

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// configErrorCases are configurations New must refuse, with the field the error must name.
func configErrorCases() []struct {
	desc    string
	options map[string]any
	want    string
} {
	base := hubOptions("http://127.0.0.1:1/introspect")
	return []struct {
		desc    string
		options map[string]any
		want    string
	}{
		{"missing url", with(base, "clientConfig.url", nil), "clientConfig.url: required"},
		{"relative url", with(base, "clientConfig.url", "/introspect"), "clientConfig.url: scheme must be http or https"},
		{"ftp url", with(base, "clientConfig.url", "ftp://idp/introspect"), "clientConfig.url: scheme must be http or https"},
		{"url without host", with(base, "clientConfig.url", "http:///introspect"), "clientConfig.url: missing host"},
		{"no token source", with(base, "tokenSource", map[string]any{}), "tokenSource: at least one of header, query or cookie is required"},
		{"scheme without header", with(base, "tokenSource", map[string]any{"headerAuthScheme": "Bearer", "query": "t"}), "tokenSource.headerAuthScheme: requires tokenSource.header"},
		{"bad header name", with(base, "tokenSource.header", "Auth orization"), "tokenSource.header: not a valid header name"},
		{"negative maxLength", with(base, "tokenSource.maxLength", "-1"), "tokenSource.maxLength"},
		{"query name of blanks", with(base, "tokenSource.query", " "), "tokenSource.query: not a usable parameter name"},
		{"query name that a NUL cuts to nothing", with(base, "tokenSource.query", "\x00x"), "tokenSource.query: not a usable parameter name"},
		{"query name with a separator", with(base, "tokenSource.query", "a=b"), "tokenSource.query: not a usable parameter name"},
		{"bad claims", with(base, "claims", "Equals(`grp`, `admin`) ||"), "claims: offset"},
		{"unknown claims function", with(base, "claims", "Equal(`grp`, `admin`)"), "claims: offset 0"},
		{"bad forwardHeaders path", with(base, "forwardHeaders", map[string]any{"X-A": "a..b"}), "forwardHeaders.X-A"},
		{"bad forwardHeaders name", with(base, "forwardHeaders", map[string]any{"X A": "a"}), "forwardHeaders: a name is not a valid header name"},
		{"forwardHeaders twins", with(base, "forwardHeaders", map[string]any{"X-User": "sub", "X_user": "name"}), "forwardHeaders.X_user: names the same header as X-User"},
		{"forwardHeaders in two casings", with(base, "forwardHeaders", map[string]any{"X-User": "sub", "x-user": "name"}), "forwardHeaders.x-user: names the same header as X-User"},
		{"forwardHeaders over the token's header", with(base, "forwardHeaders", map[string]any{"Authorization": "sub"}), "forwardHeaders.Authorization: is where the token comes from"},
		{"forwardHeaders over the token's cookie", with(with(base, "tokenSource.cookie", "session"), "forwardHeaders", map[string]any{"Cookie": "sub"}), "forwardHeaders.Cookie: is where the token comes from"},
		{"negative cache.maxBytes", with(base, "cache.maxBytes", "-1"), "cache.maxBytes: must be between 0 and"},
		{"bad usernameClaim", with(base, "usernameClaim", "."), "usernameClaim"},
		{"negative timeout", with(base, "clientConfig.timeoutSeconds", "-1"), "clientConfig.timeoutSeconds"},
		{"huge timeout", with(base, "clientConfig.timeoutSeconds", "100000"), "clientConfig.timeoutSeconds"},
		{"too many retries", with(base, "clientConfig.maxRetries", "99"), "clientConfig.maxRetries"},
		{"negative maxInFlight", with(base, "clientConfig.maxInFlight", "-1"), "clientConfig.maxInFlight: must be between 0 (the default, 64) and 10000, got -1"},
		{"huge inFlightWaitMilliseconds", with(base, "clientConfig.inFlightWaitMilliseconds", "60000"), "clientConfig.inFlightWaitMilliseconds: must be between 0 (the default, 100) and 10000"},
		{"negative consecutiveFailures", with(base, "clientConfig.circuitBreaker", map[string]any{"consecutiveFailures": "-2"}), "clientConfig.circuitBreaker.consecutiveFailures: must be between 0 (the default, 5)"},
		{"huge openSeconds", with(base, "clientConfig.circuitBreaker", map[string]any{"openSeconds": "7200"}), "clientConfig.circuitBreaker.openSeconds: must be between 0 (the default, 1) and 3600"},
		{"circuitBreaker.disabled not a boolean (Traefik's decoder names the field)", with(base, "clientConfig.circuitBreaker", map[string]any{"disabled": "maybe"}), "Disabled"},
		{"bad template", with(base, "clientConfig.headers", map[string]any{"X-A": "{{ .Request.URL.Path "}), "clientConfig.headers.X-A: not a valid Go template"},
		{"header value with newline", with(base, "clientConfig.headers", map[string]any{"X-A": "a\nb"}), "clientConfig.headers.X-A"},
		{"unreadable CA", with(base, "clientConfig.tls", map[string]any{"ca": "/nonexistent/ca.pem"}), "clientConfig.tls.ca"},
		{"CA without certificate", with(base, "clientConfig.tls", map[string]any{"ca": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}), "clientConfig.tls.ca: no PEM certificate found"},
		{"cert without key", with(base, "clientConfig.tls", map[string]any{"cert": "/nonexistent/cert.pem"}), "clientConfig.tls: cert and key must be set together"},
		{"not a number (Traefik's decoder names the field)", with(base, "clientConfig.timeoutSeconds", "five"), "ClientConfig.TimeoutSeconds"},
	}
}

func runConfigErrors(t *testing.T, build builder) {
	for _, test := range configErrorCases() {
		test := test
		t.Run(test.desc, func(t *testing.T) {
			h, _, err := build(t, &upstream{}, test.options, "bad@test")
			if err == nil {
				t.Fatalf("New accepted the configuration (handler %T)", h)
			}
			if !strings.Contains(err.Error(), test.want) {
				t.Errorf("error %q does not contain %q", err.Error(), test.want)
			}
		})
	}
}

func TestCacheConfigErrors(t *testing.T) {
	testCases := []struct {
		desc  string
		cache CacheConfig
		want  string
	}{
		{desc: "negative ttl", cache: CacheConfig{TTLSeconds: -1}, want: "cache.ttlSeconds"},
		{desc: "negative maxEntries", cache: CacheConfig{TTLSeconds: 1, MaxEntries: -5}, want: "cache.maxEntries"},
		{desc: "huge negative ttl", cache: CacheConfig{NegativeTTLSeconds: 1 << 30}, want: "cache.negativeTtlSeconds"},
		{desc: "negative stale", cache: CacheConfig{StaleIfErrorSeconds: -3}, want: "cache.staleIfErrorSeconds"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			cfg := bearerConfig("http://127.0.0.1:1/")
			cfg.Cache = test.cache
			_, err := New(context.Background(), &upstream{}, cfg, "cachecfg@test")
			if err == nil || !strings.Contains(err.Error(), test.want) {
				t.Errorf("error = %v, want one naming %s", err, test.want)
			}
		})
	}
}

func TestClientAuthConfigErrors(t *testing.T) {
	rsaPEM, _ := rsaKeyPEM(t)
	ecPEM, _ := ecKeyPEM(t)
	dir := t.TempDir()
	testCases := []struct {
		desc string
		cc   ClientConfig
		want string
	}{
		{desc: "basic without a secret", cc: ClientConfig{ClientID: "a"}, want: "clientConfig.clientSecret: required by authMethod client_secret_basic"},
		{desc: "post without a secret", cc: ClientConfig{ClientID: "a", AuthMethod: "client_secret_post"}, want: "clientConfig.clientSecret: required"},
		{desc: "secret without a client id", cc: ClientConfig{ClientSecret: "s"}, want: "clientConfig.clientId: required"},
		{desc: "method without a client id", cc: ClientConfig{AuthMethod: "client_secret_post", ClientSecret: "s"}, want: "clientConfig.clientId: required by authMethod client_secret_post"},
		{desc: "unknown method", cc: ClientConfig{ClientID: "a", AuthMethod: "client_secret_jwt"}, want: "clientConfig.authMethod: unknown method; known: client_secret_basic"},
		{desc: "secret and file", cc: ClientConfig{ClientID: "a", ClientSecret: "s", ClientSecretFile: "/x"}, want: "not both"},
		{desc: "unreadable secret file", cc: ClientConfig{ClientID: "a", ClientSecretFile: filepath.Join(dir, "missing")}, want: "clientConfig.clientSecretFile"},
		{desc: "empty secret file", cc: ClientConfig{ClientID: "a", ClientSecretFile: writeTemp(t, dir, "empty", "\n")}, want: "clientConfig.clientSecretFile: the file holds no secret"},
		{desc: "jwt without a key", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt"}, want: "clientConfig.privateKey: required"},
		{desc: "unparseable key", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt", PrivateKey: "not a key"}, want: "clientConfig.privateKey: no PEM block found"},
		{desc: "garbage in a PEM block", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt", PrivateKey: pemOf("PRIVATE KEY", []byte("nope"))}, want: "clientConfig.privateKey: the key cannot be parsed as its PEM block says"},
		{desc: "unreadable key file", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt", PrivateKeyFile: filepath.Join(dir, "nokey")}, want: "clientConfig.privateKeyFile"},
		{desc: "RSA key with ES256", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt", PrivateKey: rsaPEM, SigningAlgorithm: "ES256"}, want: "clientConfig.signingAlgorithm: ES256 does not match the key"},
		{desc: "EC key with RS256", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt", PrivateKey: ecPEM, SigningAlgorithm: "RS256"}, want: "clientConfig.signingAlgorithm: RS256 does not match the key"},
		{desc: "unsupported algorithm", cc: ClientConfig{ClientID: "a", AuthMethod: "private_key_jwt", PrivateKey: ecPEM, SigningAlgorithm: "HS256"}, want: "clientConfig.signingAlgorithm: unsupported algorithm; use RS256 or ES256"},
		{desc: "mTLS without a certificate", cc: ClientConfig{ClientID: "a", AuthMethod: "tls_client_auth"}, want: "clientConfig.tls.cert: required"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			cfg := bearerConfig("http://127.0.0.1:1/introspect")
			cc := test.cc
			cc.URL = cfg.ClientConfig.URL
			cc.TimeoutSeconds = 1
			cfg.ClientConfig = cc
			_, err := New(context.Background(), &upstream{}, cfg, "authcfg@test")
			if err == nil {
				t.Fatalf("New accepted the configuration")
			}
			if !strings.Contains(err.Error(), test.want) {
				t.Errorf("error %q does not contain %q", err.Error(), test.want)
			}
		})
	}
}

// TestConfigRangeLimits pins the limits of every numeric option, at and past each edge.
func TestConfigRangeLimits(t *testing.T) {
	for _, test := range []struct {
		field string
		set   func(c *Config, v int)
		ok    []int
		bad   []int
	}{
		{"clientConfig.timeoutSeconds", func(c *Config, v int) { c.ClientConfig.TimeoutSeconds = v }, []int{0, 1, 300}, []int{-1, 301}},
		{"clientConfig.maxRetries", func(c *Config, v int) { c.ClientConfig.MaxRetries = v }, []int{0, 10}, []int{-1, 11}},
		{"cache.ttlSeconds", func(c *Config, v int) { c.Cache.TTLSeconds = v }, []int{0, 86400}, []int{-1, 86401}},
		{"cache.negativeTtlSeconds", func(c *Config, v int) { c.Cache.NegativeTTLSeconds = v }, []int{0, 86400}, []int{-1, 86401}},
		{"cache.staleIfErrorSeconds", func(c *Config, v int) { c.Cache.StaleIfErrorSeconds = v }, []int{0, 86400}, []int{-1, 86401}},
		{"cache.maxEntries", func(c *Config, v int) { c.Cache.MaxEntries = v }, []int{0, 1, 1000000}, []int{-1, 1000001}},
		{"cache.maxBytes", func(c *Config, v int) { c.Cache.MaxBytes = v }, []int{0, 1, 64 << 30}, []int{-1, 64<<30 + 1}},
		{"tokenSource.maxLength", func(c *Config, v int) { c.TokenSource.MaxLength = v }, []int{0, 1, 1 << 20}, []int{-1}},
		{"clientConfig.maxInFlight", func(c *Config, v int) { c.ClientConfig.MaxInFlight = v }, []int{0, 1, 10000}, []int{-1, 10001}},
		{"clientConfig.inFlightWaitMilliseconds", func(c *Config, v int) { c.ClientConfig.InFlightWaitMilliseconds = v }, []int{0, 1, 10000}, []int{-1, 10001}},
		{"clientConfig.circuitBreaker.consecutiveFailures", func(c *Config, v int) { c.ClientConfig.CircuitBreaker.ConsecutiveFailures = v }, []int{0, 1, 1000}, []int{-1, 1001}},
		{"clientConfig.circuitBreaker.openSeconds", func(c *Config, v int) { c.ClientConfig.CircuitBreaker.OpenSeconds = v }, []int{0, 1, 3600}, []int{-1, 3601}},
		{"clientConfig.circuitBreaker.slowCallMilliseconds", func(c *Config, v int) { c.ClientConfig.CircuitBreaker.SlowCallMilliseconds = v }, []int{0, 1, 300000}, []int{-1, 300001}},
	} {
		t.Run(test.field, func(t *testing.T) {
			for _, v := range test.ok {
				cfg := bearerConfig("http://127.0.0.1:1/")
				test.set(cfg, v)
				if _, err := compile(cfg); err != nil {
					t.Errorf("%s %d refused: %v", test.field, v, err)
				}
			}
			for _, v := range test.bad {
				cfg := bearerConfig("http://127.0.0.1:1/")
				test.set(cfg, v)
				if _, err := compile(cfg); err == nil || !strings.HasPrefix(err.Error(), test.field+":") {
					t.Errorf("%s %d: error %v, want one naming %s", test.field, v, err, test.field)
				}
			}
		})
	}
	s, err := compile(bearerConfig("http://127.0.0.1:1/"))
	if err != nil {
		t.Fatal(err)
	}
	if s.cache.MaxEntries != 10000 || s.cache.TTLSeconds != 30 || s.client.maxRetries != 3 || s.cache.MaxBytes != 32<<20 {
		t.Errorf("defaults: maxEntries %d, ttlSeconds %d, maxRetries %d, maxBytes %d", s.cache.MaxEntries, s.cache.TTLSeconds, s.client.maxRetries, s.cache.MaxBytes)
	}
	k := s.client
	if k.maxInFlight != 64 || k.inFlightWait != 100*time.Millisecond || k.breakerFailures != 5 || k.breakerOpen != time.Second || k.breakerSlow != time.Second {
		t.Errorf("guard defaults: maxInFlight %d, inFlightWait %v, consecutiveFailures %d, openSeconds %v, slowCall %v", k.maxInFlight, k.inFlightWait, k.breakerFailures, k.breakerOpen, k.breakerSlow)
	}
	cfg0 := bearerConfig("http://127.0.0.1:1/")
	cfg0.ClientConfig.CircuitBreaker = CircuitBreakerConfig{Disabled: true, ConsecutiveFailures: 3}
	if s, err = compile(cfg0); err != nil || s.client.breakerFailures != 0 {
		t.Errorf("circuitBreaker.disabled: %v, consecutiveFailures %d, want 0 (off)", err, s.client.breakerFailures)
	}
	cfg := bearerConfig("http://127.0.0.1:1/")
	cfg.ClientConfig.TimeoutSeconds = 0
	cfg.TokenSource.MaxLength = 0
	if s, err = compile(cfg); err != nil || s.client.timeout != 5*time.Second || s.source.maxLen != 4096 {
		t.Errorf("zero values: %v, timeout %v, maxLength %d; want 5s and 4096", err, s.client.timeout, s.source.maxLen)
	}
}

// TestHeaderNameCharacters pins the RFC 9110 section 5.6.2 token characters at every edge.
func TestHeaderNameCharacters(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		want := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
		if got := isTokenChar(b); got != want {
			t.Errorf("isTokenChar(%q) = %v, want %v", b, got, want)
		}
	}
	if validHeaderName("") || !validHeaderName("X-Ok") || validHeaderName("X Ok") || validHeaderName("X-Ok\x7f") {
		t.Errorf("validHeaderName misjudges a name")
	}
}

// TestClientAuthenticationRefusals: two client authentications in one request (RFC 6749 section
// 2.3), and mutual TLS without TLS, are refused; a credential sent in clear text to another host
// gets one ERROR line when the configuration is built, and none on a reload.
func TestClientAuthenticationRefusals(t *testing.T) {
	keyPEM := mustECPEM(t)
	ca := newTestCA(t, "client")
	for _, test := range []struct {
		desc string
		cc   ClientConfig
		want string
	}{
		{desc: "client_secret_post and an Authorization header", cc: ClientConfig{URL: "https://idp/x", ClientID: "gw", ClientSecret: "s", AuthMethod: "client_secret_post", Headers: map[string]string{"Authorization": "Basic eDp5"}}, want: "clientConfig.authMethod: client_secret_post and an Authorization header"},
		{desc: "private_key_jwt and an Authorization header", cc: ClientConfig{URL: "https://idp/x", ClientID: "gw", PrivateKey: keyPEM, AuthMethod: "private_key_jwt", Headers: map[string]string{"authorization": "Basic eDp5"}}, want: "clientConfig.authMethod: private_key_jwt and an Authorization header"},
		{desc: "tls_client_auth and an Authorization header", cc: ClientConfig{URL: "https://idp/x", ClientID: "gw", AuthMethod: "tls_client_auth", TLS: TLSConfig{Cert: ca.certPEM, Key: ca.keyPEM}, Headers: map[string]string{"Authorization": "Basic eDp5"}}, want: "clientConfig.authMethod: tls_client_auth and an Authorization header"},
		{desc: "tls_client_auth over http", cc: ClientConfig{URL: "http://idp/x", ClientID: "gw", AuthMethod: "tls_client_auth", TLS: TLSConfig{Cert: ca.certPEM, Key: ca.keyPEM}}, want: "clientConfig.authMethod: tls_client_auth needs an https clientConfig.url"},
	} {
		t.Run(test.desc, func(t *testing.T) {
			cfg := bearerConfig("")
			cfg.ClientConfig = test.cc
			if _, err := New(context.Background(), &upstream{}, cfg, "refused@test"); err == nil || !strings.HasPrefix(err.Error(), test.want) {
				t.Errorf("error %v, want %q", err, test.want)
			}
		})
	}
	for _, test := range []struct {
		desc string
		cc   ClientConfig
		warn bool
	}{
		{desc: "basic to another host over http", cc: ClientConfig{URL: "http://idp.example/x", ClientID: "gw", ClientSecret: "cleartext-secret-value"}, warn: true},
		{desc: "post to another host over http", cc: ClientConfig{URL: "http://idp.example/x", ClientID: "gw", ClientSecret: "cleartext-secret-value", AuthMethod: "client_secret_post"}, warn: true},
		{desc: "an Authorization header to another host over http", cc: ClientConfig{URL: "http://10.0.0.1/x", Headers: map[string]string{"Authorization": "Basic eDp5"}}, warn: true},
		{desc: "private_key_jwt to another host over http", cc: ClientConfig{URL: "http://idp.example/x", ClientID: "gw", PrivateKey: keyPEM, AuthMethod: "private_key_jwt"}, warn: true},
		{desc: "basic over HTTP in capitals", cc: ClientConfig{URL: "HTTP://idp.example/x", ClientID: "gw", ClientSecret: "cleartext-secret-value"}, warn: true},
		{desc: "an API key header over http", cc: ClientConfig{URL: "http://idp.example/x", Headers: map[string]string{"X-Api-Key": "eDp5"}}, warn: true},
		{desc: "a harmless header over http", cc: ClientConfig{URL: "http://idp.example/x", Headers: map[string]string{"X-Tenant": "t1"}}},
		{desc: "basic over https", cc: ClientConfig{URL: "https://idp.example/x", ClientID: "gw", ClientSecret: "cleartext-secret-value"}},
		{desc: "basic to loopback over http", cc: ClientConfig{URL: "http://127.0.0.1:9/x", ClientID: "gw", ClientSecret: "cleartext-secret-value"}},
		{desc: "basic to localhost over http", cc: ClientConfig{URL: "http://localhost:9/x", ClientID: "gw", ClientSecret: "cleartext-secret-value"}},
		{desc: "none over http", cc: ClientConfig{URL: "http://idp.example/x", AuthMethod: "none"}},
	} {
		t.Run(test.desc, func(t *testing.T) {
			name := "cleartext-" + test.desc + "@test"
			var out bytes.Buffer
			var mu sync.Mutex
			build := func() {
				cfg := bearerConfig("")
				cfg.ClientConfig = test.cc
				cfg.ClientConfig.TimeoutSeconds = 1
				h, err := New(context.Background(), &upstream{}, cfg, name)
				if err != nil {
					t.Fatal(err)
				}
				_ = h
			}
			// The first New makes the shared state, whose logger writes to the standard
			// logger's writer of that moment.
			withLogger(name, &lockedWriter{mu: &mu, w: &out}, func() {
				build()
				build() // a reload: the state exists, nothing is logged again
			})
			mu.Lock()
			got := out.String()
			mu.Unlock()
			warned := strings.Contains(got, "clear text")
			if warned != test.warn || strings.Count(got, "\n") > 1 {
				t.Errorf("warned %v, want %v; log:\n%s", warned, test.warn, got)
			}
			if strings.Contains(got, "eDp5") || strings.Contains(got, "cleartext-secret-value") {
				t.Errorf("the warning quotes a credential:\n%s", got)
			}
		})
	}
}
