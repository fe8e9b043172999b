package oauthintrospection

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"
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

// forwardHeader is one compiled forwardHeaders entry.
type forwardHeader struct {
	name string   // canonical header name
	path []string // pre-split claim path
}

// identityHeaders is what New compiles from forwardHeaders to keep a client from forging them.
type identityHeaders struct {
	forward []forwardHeader // sorted by name, so that every New of one configuration agrees
	names   []string        // the canonical names of forward, in the same order
	// twins are the other names a CGI-style backend reads as one of names (see headerTwins); they
	// are removed from every request.
	twins []string
	// scan holds the folded names (foldHeaderName) of headers with too many separators to list
	// their twins; when it is not nil, every incoming header is compared with it.
	scan map[string]bool
}

// headerTemplate is one compiled clientConfig.headers entry. Exactly one of tmpl and value is used.
type headerTemplate struct {
	name  string
	value string
	tmpl  *template.Template
}

// settings is the validated, immutable form of Config that the handler runs on.
type settings struct {
	source       tokenSource
	endpoint     string
	hint         string
	headers      []headerTemplate
	warnings     []string    // ERROR lines New logs once, when it makes the shared state
	tls          *tlsSource  // nil when clientConfig.tls is empty
	tlsConfig    *tls.Config // built from tls at New
	auth         *clientAuth // nil when credentials come only from headers
	timeout      int         // seconds
	maxRetries   int
	forwardAuth  bool
	identity     identityHeaders
	usernamePath []string
	claims       claimsExpr // nil when no claims are configured
	cache        CacheConfig
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

func compileClient(cc ClientConfig, s *settings) error {
	if err := checkEndpoint(cc.URL); err != nil {
		return err
	}
	s.endpoint = cc.URL
	s.hint = cc.TokenTypeHint
	switch {
	case cc.TimeoutSeconds == 0:
		s.timeout = defaultTimeoutSeconds
	case cc.TimeoutSeconds < 0 || cc.TimeoutSeconds > maxTimeoutSeconds:
		return fmt.Errorf("clientConfig.timeoutSeconds: must be between 1 and %d, got %d", maxTimeoutSeconds, cc.TimeoutSeconds)
	default:
		s.timeout = cc.TimeoutSeconds
	}
	if cc.MaxRetries < 0 || cc.MaxRetries > maxMaxRetries {
		return fmt.Errorf("clientConfig.maxRetries: must be between 0 and %d, got %d", maxMaxRetries, cc.MaxRetries)
	}
	s.maxRetries = cc.MaxRetries
	var err error
	if s.headers, err = compileHeaderTemplates(cc.Headers); err != nil {
		return err
	}
	s.warnings = append(s.warnings, checkTemplates(s.headers)...)
	if s.tls, s.tlsConfig, err = compileTLS(cc.TLS); err != nil {
		return err
	}
	if s.auth, err = compileClientAuth(cc); err != nil {
		return err
	}
	return checkCredentials(s)
}

// checkCredentials refuses client authentications that cannot work or that RFC 6749 section 2.3
// forbids ("MUST NOT use more than one authentication method in each request"), and warns when a
// credential would cross the network in clear text.
func checkCredentials(s *settings) error {
	headerAuth := false
	for _, h := range s.headers {
		headerAuth = headerAuth || h.name == "Authorization"
	}
	method := ""
	if s.auth != nil {
		method = s.auth.method
	}
	switch {
	case headerAuth && (method == authSecretPost || method == authPrivateKeyJWT || method == authTLSClient):
		return fmt.Errorf("clientConfig.authMethod: %s and an Authorization header in clientConfig.headers are two client authentications (RFC 6749 section 2.3): remove one", method)
	}
	u, err := url.Parse(s.endpoint) // checkEndpoint parsed it already
	if err != nil {
		return errors.New("clientConfig.url: not a valid URL")
	}
	if method == authTLSClient && u.Scheme != "https" {
		return errors.New("clientConfig.authMethod: tls_client_auth needs an https clientConfig.url")
	}
	sendsSecret := method == authSecretBasic || method == authSecretPost || method == authPrivateKeyJWT
	for _, h := range s.headers {
		sendsSecret = sendsSecret || looksLikeCredential(h.name)
	}
	if sendsSecret && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		s.warnings = append(s.warnings, "clientConfig.url: an http:// endpoint gets the client credentials in clear text; use https")
	}
	return nil
}

// looksLikeCredential reports whether a clientConfig.headers name is one that carries a
// credential by its name: Authorization, Cookie, or a name with key, token, secret or auth in it.
func looksLikeCredential(name string) bool {
	n := strings.ToLower(name)
	for _, word := range []string{"authorization", "cookie", "key", "token", "secret", "auth"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return false
}

// isLoopback reports whether host is this machine, where clear text stays local.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkEndpoint(raw string) error {
	if raw == "" {
		return errors.New("clientConfig.url: required")
	}
	// Errors name the problem, never the value: a secret pasted here must not reach the log.
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("clientConfig.url: not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("clientConfig.url: scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("clientConfig.url: missing host")
	}
	if u.User != nil {
		return errors.New("clientConfig.url: credentials in the URL are not supported; use clientConfig.headers")
	}
	return nil
}

// compileHeaderTemplates parses each header value once. A value without "{{" is sent as it is.
// The result is sorted by name: compiled state never depends on Go's map order.
func compileHeaderTemplates(headers map[string]string) ([]headerTemplate, error) {
	out := make([]headerTemplate, 0, len(headers))
	for _, name := range sortedKeys(headers) {
		value := headers[name]
		if !validHeaderName(name) {
			return nil, errors.New("clientConfig.headers: a name is " + notAToken("header name"))
		}
		h := headerTemplate{name: http.CanonicalHeaderKey(name), value: value}
		if strings.Contains(value, "{{") {
			tmpl, err := template.New(h.name).Parse(value)
			if err != nil {
				// The parse error quotes the value, and a credential can hold "{{".
				return nil, fmt.Errorf("clientConfig.headers.%s: not a valid Go template (a value with {{ is one)", name)
			}
			h.tmpl = tmpl
		} else if !validHeaderValue(value) {
			return nil, fmt.Errorf("clientConfig.headers.%s: value contains a control character", name)
		}
		out = append(out, h)
	}
	return out, nil
}

// checkTemplates renders each header template for a plain GET / without headers, and returns a
// warning for each one that fails there. Such a template fails on many requests, maybe all: New
// says so once at ERROR, since at request time its failures are logged at DEBUG, as the client's.
func checkTemplates(headers []headerTemplate) []string {
	plain := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: http.Header{}, Host: "localhost", RequestURI: "/"}
	var warnings []string
	for _, h := range headers {
		if h.tmpl == nil {
			continue
		}
		if _, reason, _ := renderHeader(h.tmpl, plain); reason != "" {
			warnings = append(warnings, "clientConfig.headers."+h.name+": the template fails on a plain GET request ("+reason+"); requests it fails on get 503")
		}
	}
	return warnings
}

// compileForwardHeaders compiles forwardHeaders, sorted by name, with the twins of every name.
// Two names that a backend could read as one header are refused, and so is a name that would
// remove the token's own carrier before it is read.
func compileForwardHeaders(fh map[string]string, src tokenSource) (identityHeaders, error) {
	var id identityHeaders
	folded := map[string]string{}
	for _, name := range sortedKeys(fh) {
		if !validHeaderName(name) {
			return id, errors.New("forwardHeaders: a name is " + notAToken("header name"))
		}
		path, err := splitClaimPath(fh[name])
		if err != nil {
			return id, fmt.Errorf("forwardHeaders.%s: %w", name, err)
		}
		canonical := http.CanonicalHeaderKey(name)
		fold := foldHeaderName(canonical)
		if other, dup := folded[fold]; dup {
			return id, fmt.Errorf("forwardHeaders.%s: names the same header as %s (case, and _ for -, do not tell headers apart)", name, other)
		}
		folded[fold] = name
		if fold == foldHeaderName(src.header) || (src.cookie != "" && fold == "cookie") {
			return id, fmt.Errorf("forwardHeaders.%s: is where the token comes from (tokenSource)", name)
		}
		id.forward = append(id.forward, forwardHeader{name: canonical, path: path})
		id.names = append(id.names, canonical)
		twins, listed := headerTwins(canonical)
		if !listed {
			if id.scan == nil {
				id.scan = map[string]bool{}
			}
			id.scan[fold] = true
		}
		id.twins = append(id.twins, withoutName(twins, canonical)...)
	}
	return id, nil
}

// maxTwinSeparators bounds the names whose twins are listed one by one: a name with n separators
// has 2^n spellings.
const maxTwinSeparators = 5

// headerTwins returns every canonical spelling of name with each "-" or "_" written either way.
// CGI, PHP and WSGI backends read "X-User" and "X_User" both as HTTP_X_USER (RFC 3875 section
// 4.1.18), so a client's X_User would stand beside the X-User the gateway sets. Net/http hands
// over header names in canonical form, so the canonical spellings are all there is to remove.
// listed is false, with no twins, when name has more than maxTwinSeparators separators.
func headerTwins(name string) (twins []string, listed bool) {
	var seps []int
	for i := 0; i < len(name); i++ {
		if name[i] == '-' || name[i] == '_' {
			seps = append(seps, i)
		}
	}
	if len(seps) > maxTwinSeparators {
		return nil, false
	}
	b := []byte(name)
	for mask := 0; mask < 1<<len(seps); mask++ {
		for j, at := range seps {
			b[at] = '-'
			if mask&(1<<j) != 0 {
				b[at] = '_'
			}
		}
		twin := http.CanonicalHeaderKey(string(b))
		if !containsName(twins, twin) {
			twins = append(twins, twin)
		}
	}
	return twins, true
}

// foldHeaderName is the form in which a CGI-style backend sees a header name: case and the
// difference between "-" and "_" are gone.
func foldHeaderName(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

func withoutName(names []string, name string) []string {
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
	}
	return out
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tlsSource is the compiled clientConfig.tls: the PEM of the CA, the certificate and the key, each
// inline or from a file that is re-read when it changes, so that a rotated certificate or CA is
// picked up without a reload.
type tlsSource struct {
	insecure      bool
	ca, cert, key pemSource

	mu      sync.Mutex
	problem string // guarded by mu: why the files last failed to make a configuration
}

// pemSource is one PEM option: its content, or the file it names.
type pemSource struct {
	field  string
	inline []byte
	file   *watchedFile
}

// compileTLS compiles clientConfig.tls. It returns nil when nothing is configured, so the
// transport keeps Go's defaults.
func compileTLS(t TLSConfig) (*tlsSource, *tls.Config, error) {
	if t.CA == "" && t.Cert == "" && t.Key == "" && !t.InsecureSkipVerify {
		return nil, nil, nil
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, nil, errors.New("clientConfig.tls: cert and key must be set together")
	}
	src := &tlsSource{insecure: t.InsecureSkipVerify}
	var err error
	if src.ca, err = compilePEM("clientConfig.tls.ca", t.CA); err != nil {
		return nil, nil, err
	}
	if src.cert, err = compilePEM("clientConfig.tls.cert", t.Cert); err != nil {
		return nil, nil, err
	}
	if src.key, err = compilePEM("clientConfig.tls.key", t.Key); err != nil {
		return nil, nil, err
	}
	conf, err := src.build()
	if err != nil {
		return nil, nil, err
	}
	return src, conf, nil
}

// compilePEM takes v as PEM content when it holds a PEM block, and otherwise as the path of a PEM
// file. The error never quotes v: a key put where a path belongs must not reach the log.
func compilePEM(field, v string) (pemSource, error) {
	p := pemSource{field: field}
	switch {
	case v == "":
	case strings.Contains(v, "-----BEGIN "):
		p.inline = []byte(v)
	default:
		file, err := openWatched(v, maxPEMFileBytes, time.Now())
		if err != nil {
			return p, fmt.Errorf("%s: neither PEM content nor a readable file: %w", field, err)
		}
		p.file = file
	}
	return p, nil
}

// content returns the PEM of p: inline, or the file's accepted content.
func (p *pemSource) content() []byte {
	if p.file != nil {
		return p.file.accepted()
	}
	return p.inline
}

// build makes the TLS configuration from the current PEM contents.
func (t *tlsSource) build() (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.insecure}
	if ca := t.ca.content(); ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("clientConfig.tls.ca: no PEM certificate found")
		}
		conf.RootCAs = pool
	}
	if cert := t.cert.content(); cert != nil {
		pair, err := tls.X509KeyPair(cert, t.key.content())
		if err != nil {
			return nil, errors.New("clientConfig.tls: cert and key: " + keyPairProblem(err))
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// poll reads the TLS files again when their time has come, and reports whether one changed.
func (t *tlsSource) poll(now time.Time) bool {
	changed := false
	for _, p := range []*pemSource{&t.ca, &t.cert, &t.key} {
		if p.file != nil && p.file.poll(now) != nil {
			changed = true
		}
	}
	return changed
}

// fail records why the files failed to make a TLS configuration, for fileProblems.
func (t *tlsSource) fail(problem string) {
	t.mu.Lock()
	t.problem = problem
	t.mu.Unlock()
}

// fileProblems returns, once each, the problems met while re-reading the TLS files.
func (t *tlsSource) fileProblems() []string {
	t.mu.Lock()
	var out []string
	if t.problem != "" {
		out = append(out, t.problem)
		t.problem = ""
	}
	t.mu.Unlock()
	for _, p := range []*pemSource{&t.ca, &t.cert, &t.key} {
		if p.file != nil {
			if problem := p.file.takeProblem(); problem != "" {
				out = append(out, p.field+": "+problem)
			}
		}
	}
	return out
}

// keyPairProblem names why tls.X509KeyPair refused a certificate and key, in its own fixed words;
// anything else is summed up, since an error could quote what it parsed.
func keyPairProblem(err error) string {
	msg := err.Error()
	for _, known := range []string{
		"private key does not match public key",
		"failed to find any PEM data in certificate input",
		"failed to find any PEM data in key input",
		"failed to find certificate PEM data in certificate input",
		"failed to find PEM block with type ending in \"PRIVATE KEY\" in key input",
		"unknown private key type",
	} {
		if strings.Contains(msg, known) {
			return known
		}
	}
	return "they cannot be parsed"
}

// notAToken describes a value that is not an RFC 9110 token, without quoting it.
func notAToken(what string) string {
	return "not a valid " + what + " (RFC 9110 token characters only)"
}

// validHeaderName reports whether s is an RFC 9110 section 5.6.2 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderValue reports whether s can be sent as a header value: no control characters but tab.
// One compiled call: a byte loop costs the interpreter about 0.5 µs a byte.
func validHeaderValue(s string) bool {
	return !strings.ContainsAny(s, controlChars)
}

// controlChars are the ASCII control characters but tab, and DEL.
const controlChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
