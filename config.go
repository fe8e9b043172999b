package oauthintrospection

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Config is the middleware configuration. Field names follow the Traefik Hub oAuthIntrospection
// reference: Traefik decodes options into it with mapstructure, matching keys to field names
// case-insensitively and dropping unknown keys.
type Config struct {
	// TokenSource says where the client's token is taken from. At least one source is required.
	TokenSource TokenSource
	// ClientConfig describes the introspection endpoint and how to call it.
	ClientConfig ClientConfig
	// ForwardAuthorization keeps the credential that carried the token on the request sent upstream.
	// If false (the default), it is removed.
	ForwardAuthorization bool
	// ForwardHeaders maps a request header name to a claim path in the introspection response.
	// A missing claim sends the header with an empty value, as in Traefik Hub. If empty, no header
	// is set.
	ForwardHeaders map[string]string
	// UsernameClaim is the claim path whose value Traefik's access log shows as the user.
	// If empty, the access log shows no user.
	UsernameClaim string
	// Claims is an expression over the introspection response that must be true for the request
	// to pass. If empty, every active token passes.
	Claims string
	// Cache configures the reuse of introspection answers.
	Cache CacheConfig
	// Revocation lets clients revoke their tokens (RFC 7009) through the middleware, which then
	// forgets them. If empty, no path is answered.
	Revocation RevocationConfig
}

// RevocationConfig configures the RFC 7009 revocation requests the middleware answers itself.
type RevocationConfig struct {
	// Path is the request path the middleware answers as a revocation endpoint (POST only). Required
	// with URL.
	Path string
	// URL is the IdP's revocation endpoint, to which the request goes on with the client's own
	// authentication. Required with Path.
	URL string
}

// TokenSource lists the places a token may come from. When several are set, they are tried in the
// order header, query, cookie, and the first one present in the request is used.
type TokenSource struct {
	// Header is the name of the request header that carries the token. If empty, no header is read.
	Header string
	// HeaderAuthScheme is the scheme expected before the token in Header (e.g. Bearer), compared
	// case-insensitively. If empty, the whole header value is the token.
	HeaderAuthScheme string
	// Query is the name of the query parameter that carries the token. If empty, the query is not read.
	Query string
	// Cookie is the name of the cookie that carries the token. If empty, cookies are not read.
	Cookie string
	// MaxLength is the longest token accepted, in bytes; longer tokens are rejected without an
	// introspection call. If zero, 4096 is used.
	MaxLength int
}

// ClientConfig configures the call to the RFC 7662 introspection endpoint.
type ClientConfig struct {
	// URL is the absolute http or https URL of the introspection endpoint. Required.
	URL string
	// Headers are sent with every introspection request. Values are Go text/template strings
	// evaluated with .Request, the incoming *http.Request; plain strings are sent as they are.
	Headers map[string]string
	// TokenTypeHint is sent as token_type_hint (RFC 7662 section 2.1). If empty, no hint is sent.
	TokenTypeHint string
	// TLS configures the connection to an https endpoint.
	TLS TLSConfig
	// TimeoutSeconds bounds the whole introspection of one token, retries included. If zero, 5 is used.
	TimeoutSeconds int
	// MaxRetries is how many times a failed call (transport error, 5xx or 429) is retried within
	// TimeoutSeconds. CreateConfig sets 3; zero disables retries.
	MaxRetries int
	// MaxInFlight bounds the introspections in flight for this middleware, over all its routers.
	// A miss beyond it waits up to InFlightWaitMilliseconds for a slot, then gets 503 with
	// Retry-After. If zero, 64 is used.
	MaxInFlight int
	// InFlightWaitMilliseconds is how long a miss waits for an in-flight slot. If zero, 100 is used.
	InFlightWaitMilliseconds int
	// CircuitBreaker stops calling an IdP that keeps failing.
	CircuitBreaker CircuitBreakerConfig
	// ClientID identifies this gateway to the endpoint (RFC 7662 section 2.1). If empty, and
	// AuthMethod is empty, credentials come only from Headers.
	ClientID string
	// ClientSecret is the secret of ClientID. Prefer ClientSecretFile: Traefik logs options at DEBUG.
	ClientSecret string
	// ClientSecretFile is a file holding the secret; it is re-read when it changes.
	ClientSecretFile string
	// AuthMethod is client_secret_basic, client_secret_post, private_key_jwt, tls_client_auth or none.
	// If empty, client_secret_basic is used when ClientID is set.
	AuthMethod string
	// PrivateKey is the PEM key that signs private_key_jwt assertions.
	PrivateKey string
	// PrivateKeyFile is a PEM file holding that key.
	PrivateKeyFile string
	// SigningAlgorithm is RS256 or ES256. If empty, it follows the key: RS256 for RSA, ES256 for EC.
	SigningAlgorithm string
	// AssertionAudience is the aud of private_key_jwt assertions. If empty, URL is used; some IdPs,
	// Keycloak among them, want their issuer instead.
	AssertionAudience string
	// KeyID is sent as the kid of private_key_jwt assertions. If empty, no kid is sent.
	KeyID string
}

// CircuitBreakerConfig configures the circuit breaker in front of the introspection endpoint. It
// counts introspections, each with its retries: one fails when it gets no answer (a transport
// error, a timeout, a 5xx, a 429, or a 200 that is not an introspection answer); any answer, an
// inactive token or a 4xx included, resets the count.
type CircuitBreakerConfig struct {
	// ConsecutiveFailures is how many failed introspections in a row open the breaker. If zero,
	// 5 is used.
	ConsecutiveFailures int
	// OpenSeconds is how long the breaker stays open, answering misses with 503 at once, before it
	// lets one probe introspection through. If zero, 1 is used.
	OpenSeconds int
	// SlowCallMilliseconds is how long the IdP may leave consecutiveFailures introspections (or
	// maxInFlight, if fewer) in flight without answering any of them before the breaker opens, so
	// that an IdP that accepts connections but never answers is found this soon and not after
	// timeoutSeconds. Keep it above the IdP's slowest normal answer. If zero, 1000 is used.
	SlowCallMilliseconds int
	// Disabled turns the breaker off: every miss calls the IdP. Default false.
	Disabled bool
}

// TLSConfig configures TLS to the introspection endpoint. CA, Cert and Key hold PEM content or the
// path of a PEM file.
type TLSConfig struct {
	// CA is the certificate bundle that verifies the endpoint. If empty, the system roots are used.
	CA string
	// Cert is the client certificate presented to the endpoint. If empty, none is presented.
	Cert string
	// Key is the private key of Cert. Required when Cert is set.
	Key string
	// InsecureSkipVerify disables verification of the endpoint's certificate. Default false.
	InsecureSkipVerify bool
}

const (
	defaultTimeoutSeconds = 5
	defaultMaxRetries     = 3
	defaultMaxTokenLength = 4096
	maxTimeoutSeconds     = 300
	maxMaxRetries         = 10
	// The guard's defaults and bounds (guard.go; docs/resilience.md says how they were chosen).
	defaultMaxInFlight     = 64
	maxMaxInFlight         = 10000
	defaultInFlightWaitMs  = 100
	maxInFlightWaitMs      = 10000
	defaultBreakerFailures = 5
	maxBreakerFailures     = 1000
	defaultBreakerOpenSecs = 1
	maxBreakerOpenSeconds  = 3600
	defaultBreakerSlowMs   = 1000
	maxBreakerSlowMs       = 300000
)

// CacheConfig configures the introspection cache. A cached answer never skips a check: exp and nbf
// are checked again on every hit, and the lifetime of an entry never passes the token's exp.
type CacheConfig struct {
	// TTLSeconds is how long an active answer is reused, capped by the token's exp.
	// CreateConfig sets 30; zero disables the cache.
	TTLSeconds int
	// MaxEntries bounds the number of cached answers; the oldest is evicted first.
	// If zero, 10000 is used.
	MaxEntries int
	// MaxBytes bounds the memory the cached answers hold, forwarded claims included; the oldest are
	// evicted first. If zero, 32 MiB is used.
	MaxBytes int
	// NegativeTTLSeconds is how long an inactive answer is reused. If zero, inactive answers are not cached.
	NegativeTTLSeconds int
	// StaleIfErrorSeconds lets an active answer serve this long past its TTL while the IdP cannot
	// be reached, never past the token's exp. If zero, a failing IdP always gives 503.
	StaleIfErrorSeconds int
	// Redis is a second tier shared by replicas, asked on a local miss before the IdP. If its
	// endpoints are empty, there is none.
	Redis RedisConfig
}

// RedisConfig configures the shared cache tier. The option names follow Traefik Hub's store.
type RedisConfig struct {
	// Endpoints are host:port addresses, tried in order; a comma-separated string works too.
	Endpoints []string
	// Username and Password authenticate with AUTH (ACL user, or the default user when Username is
	// empty). Prefer PasswordFile: Traefik logs options at DEBUG.
	Username string
	Password string
	// PasswordFile is a file holding the password; it is re-read when it changes.
	PasswordFile string
	// Database is the logical database (SELECT). Default 0.
	Database int
	// TLS configures a TLS connection to Redis. If empty, plain TCP.
	TLS TLSConfig
	// KeyPrefix starts every key. If empty, "oauthintrospection:" is used.
	KeyPrefix string
	// TimeoutMilliseconds bounds each Redis command, dialing included. If zero, 50 is used.
	TimeoutMilliseconds int
	// LocalTTLSeconds caps how long an answer stays in the in-process cache while Redis is
	// configured: the bound within which a revocation through another replica reaches this one.
	// If zero, 5 is used.
	LocalTTLSeconds int
}

const (
	defaultCacheTTL        = 30
	defaultCacheMaxEntries = 10000
	defaultCacheMaxBytes   = 32 << 20
	maxCacheSeconds        = 86400
	maxCacheEntries        = 1000000
	maxCacheBytes          = 64 << 30
	// entryOverhead is what one entry costs besides its strings: the map slot, the entry, the
	// verdict, the ring slot and slice headers. Measured by BenchmarkCacheEntryBytes.
	entryOverhead = 360
)

// CreateConfig returns the default configuration; Traefik decodes the user's options into it.
func CreateConfig() *Config {
	return &Config{
		ForwardHeaders: map[string]string{},
		ClientConfig: ClientConfig{
			Headers:        map[string]string{},
			TimeoutSeconds: defaultTimeoutSeconds,
			MaxRetries:     defaultMaxRetries,
		},
		TokenSource: TokenSource{MaxLength: defaultMaxTokenLength},
		Cache:       CacheConfig{TTLSeconds: defaultCacheTTL, MaxEntries: defaultCacheMaxEntries},
	}
}

// settings is the validated, immutable form of Config that the handler runs on. (The file sources
// inside client re-read their files; each guards its own state.)
type settings struct {
	source       tokenSource
	client       clientSettings
	warnings     []string // ERROR lines New logs once, when it makes the shared state
	forwardAuth  bool
	identity     identityHeaders
	usernamePath []string
	claims       *claimsProgram // nil when no claims are configured
	cache        CacheConfig    // the in-process cache; its TTLs capped while Redis is configured
	shared       *sharedTier    // nil without cache.redis
	revocation   *revocation    // nil without revocation.path
}

// compile validates cfg and turns it into settings. Every error names the offending field.
func compile(cfg *Config) (*settings, error) {
	if cfg == nil {
		return nil, errors.New("config: missing")
	}
	s := &settings{forwardAuth: cfg.ForwardAuthorization}
	var err error
	if s.source, err = compileTokenSource(cfg.TokenSource); err != nil {
		return nil, err
	}
	if err = compileClient(cfg.ClientConfig, s); err != nil {
		return nil, err
	}
	if s.identity, err = compileForwardHeaders(cfg.ForwardHeaders, s.source); err != nil {
		return nil, err
	}
	if cfg.UsernameClaim != "" {
		if s.usernamePath, err = splitClaimPath(cfg.UsernameClaim); err != nil {
			return nil, fmt.Errorf("usernameClaim: %w", err)
		}
	}
	if cfg.Claims != "" {
		if s.claims, err = parseClaims(cfg.Claims); err != nil {
			return nil, fmt.Errorf("claims: %w", err)
		}
	}
	if s.cache, err = compileCache(cfg.Cache); err != nil {
		return nil, err
	}
	if s.shared, err = compileRedis(cfg.Cache, &s.cache, &s.client); err != nil {
		return nil, err
	}
	if s.revocation, err = compileRevocation(cfg.Revocation, s.client.maxInFlight); err != nil {
		return nil, err
	}
	return s, nil
}

func compileCache(c CacheConfig) (CacheConfig, error) {
	for _, f := range []struct {
		name string
		v    int
	}{{"ttlSeconds", c.TTLSeconds}, {"negativeTtlSeconds", c.NegativeTTLSeconds}, {"staleIfErrorSeconds", c.StaleIfErrorSeconds}} {
		if f.v < 0 || f.v > maxCacheSeconds {
			return c, fmt.Errorf("cache.%s: must be between 0 and %d, got %d", f.name, maxCacheSeconds, f.v)
		}
	}
	if c.MaxEntries < 0 || c.MaxEntries > maxCacheEntries {
		return c, fmt.Errorf("cache.maxEntries: must be between 0 and %d, got %d", maxCacheEntries, c.MaxEntries)
	}
	if c.MaxEntries == 0 {
		c.MaxEntries = defaultCacheMaxEntries
	}
	if c.MaxBytes < 0 || c.MaxBytes > maxCacheBytes {
		return c, fmt.Errorf("cache.maxBytes: must be between 0 and %d, got %d", maxCacheBytes, c.MaxBytes)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = defaultCacheMaxBytes
	}
	return c, nil
}

func compileTokenSource(ts TokenSource) (tokenSource, error) {
	src := tokenSource{
		header: strings.TrimSpace(ts.Header),
		scheme: strings.TrimSpace(ts.HeaderAuthScheme),
		query:  ts.Query,
		cookie: ts.Cookie,
		maxLen: ts.MaxLength,
	}
	if src.header == "" && src.query == "" && src.cookie == "" {
		return src, errors.New("tokenSource: at least one of header, query or cookie is required")
	}
	if src.header != "" && !validHeaderName(src.header) {
		return src, errors.New("tokenSource.header: " + notAToken("header name"))
	}
	if src.scheme != "" && src.header == "" {
		return src, errors.New("tokenSource.headerAuthScheme: requires tokenSource.header")
	}
	if src.scheme != "" && !validHeaderName(src.scheme) {
		return src, errors.New("tokenSource.headerAuthScheme: " + notAToken("auth scheme"))
	}
	if src.cookie != "" && !validHeaderName(src.cookie) {
		return src, errors.New("tokenSource.cookie: " + notAToken("cookie name"))
	}
	if src.maxLen < 0 {
		return src, fmt.Errorf("tokenSource.maxLength: must not be negative, got %d", src.maxLen)
	}
	if src.maxLen == 0 {
		src.maxLen = defaultMaxTokenLength
	}
	src.header = http.CanonicalHeaderKey(src.header)
	if src.header != "" {
		twins, listed := headerTwins(src.header)
		src.headerTwins = withoutName(twins, src.header)
		src.headerScan = !listed
	}
	src.queryFold = foldParamName(src.query)
	src.cookieFold = foldParamName(src.cookie)
	if src.query != "" && (src.queryFold == "" || strings.ContainsAny(src.query, "&=;#")) {
		return src, errors.New("tokenSource.query: not a usable parameter name")
	}
	return src, nil
}

// orDefault returns v, or fallback when v is zero.
func orDefault(v, fallback int) int {
	if v == 0 {
		return fallback
	}
	return v
}
