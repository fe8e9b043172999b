package oauthintrospection

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// This file compiles clientConfig: the endpoint, the call's bounds and guard, the headers, TLS and
// the client's credentials.

// clientSettings is the compiled clientConfig: all the IdP client is built from.
type clientSettings struct {
	endpoint   string
	hintField  string // "&token_type_hint=..." or ""
	headers    []headerTemplate
	templated  []headerTemplate // the headers whose value depends on the request
	tls        *tlsSource       // nil when clientConfig.tls is empty
	tlsConfig  *tls.Config      // built from tls at New
	auth       *clientAuth      // nil when credentials come only from headers
	timeout    time.Duration    // bounds a whole introspection, retries included
	maxRetries int
	// The guard (guard.go): breakerFailures is 0 when the breaker is disabled.
	maxInFlight     int
	inFlightWait    time.Duration
	breakerFailures int
	breakerOpen     time.Duration
	breakerSlow     time.Duration
}

// compileClient compiles clientConfig into s.client, adding its warnings to s.warnings.
func compileClient(cc ClientConfig, s *settings) error {
	if err := checkEndpoint("clientConfig.url", cc.URL); err != nil {
		return err
	}
	k := &s.client
	k.endpoint = cc.URL
	if cc.TokenTypeHint != "" {
		k.hintField = "&token_type_hint=" + url.QueryEscape(cc.TokenTypeHint)
	}
	switch {
	case cc.TimeoutSeconds == 0:
		k.timeout = defaultTimeoutSeconds * time.Second
	case cc.TimeoutSeconds < 0 || cc.TimeoutSeconds > maxTimeoutSeconds:
		return fmt.Errorf("clientConfig.timeoutSeconds: must be between 1 and %d, got %d", maxTimeoutSeconds, cc.TimeoutSeconds)
	default:
		k.timeout = time.Duration(cc.TimeoutSeconds) * time.Second
	}
	if cc.MaxRetries < 0 || cc.MaxRetries > maxMaxRetries {
		return fmt.Errorf("clientConfig.maxRetries: must be between 0 and %d, got %d", maxMaxRetries, cc.MaxRetries)
	}
	k.maxRetries = cc.MaxRetries
	var err error
	if err = compileGuard(cc, k); err != nil {
		return err
	}
	if k.headers, err = compileHeaderTemplates(cc.Headers); err != nil {
		return err
	}
	for _, h := range k.headers {
		if h.tmpl != nil {
			k.templated = append(k.templated, h)
		}
	}
	s.warnings = append(s.warnings, checkTemplates(k.headers)...)
	if k.tls, k.tlsConfig, err = compileTLS("clientConfig.tls", cc.TLS); err != nil {
		return err
	}
	if k.auth, err = compileClientAuth(cc); err != nil {
		return err
	}
	return checkCredentials(s)
}

// compileGuard compiles the options of the in-flight bound and the circuit breaker into k.
func compileGuard(cc ClientConfig, k *clientSettings) error {
	cb := cc.CircuitBreaker
	for _, f := range []struct {
		name              string
		v, fallback, most int
	}{
		{"clientConfig.maxInFlight", cc.MaxInFlight, defaultMaxInFlight, maxMaxInFlight},
		{"clientConfig.inFlightWaitMilliseconds", cc.InFlightWaitMilliseconds, defaultInFlightWaitMs, maxInFlightWaitMs},
		{"clientConfig.circuitBreaker.consecutiveFailures", cb.ConsecutiveFailures, defaultBreakerFailures, maxBreakerFailures},
		{"clientConfig.circuitBreaker.openSeconds", cb.OpenSeconds, defaultBreakerOpenSecs, maxBreakerOpenSeconds},
		{"clientConfig.circuitBreaker.slowCallMilliseconds", cb.SlowCallMilliseconds, defaultBreakerSlowMs, maxBreakerSlowMs},
	} {
		if f.v < 0 || f.v > f.most {
			return fmt.Errorf("%s: must be between 0 (the default, %d) and %d, got %d", f.name, f.fallback, f.most, f.v)
		}
	}
	k.maxInFlight = orDefault(cc.MaxInFlight, defaultMaxInFlight)
	k.inFlightWait = time.Duration(orDefault(cc.InFlightWaitMilliseconds, defaultInFlightWaitMs)) * time.Millisecond
	k.breakerFailures = orDefault(cb.ConsecutiveFailures, defaultBreakerFailures)
	k.breakerOpen = time.Duration(orDefault(cb.OpenSeconds, defaultBreakerOpenSecs)) * time.Second
	k.breakerSlow = time.Duration(orDefault(cb.SlowCallMilliseconds, defaultBreakerSlowMs)) * time.Millisecond
	if cb.Disabled {
		k.breakerFailures = 0
	}
	return nil
}

// checkCredentials refuses client authentications that cannot work or that RFC 6749 section 2.3
// forbids ("MUST NOT use more than one authentication method in each request"), and warns when a
// credential would cross the network in clear text.
func checkCredentials(s *settings) error {
	k := &s.client
	headerAuth := false
	for _, h := range k.headers {
		headerAuth = headerAuth || h.name == "Authorization"
	}
	method := ""
	if k.auth != nil {
		method = k.auth.method
	}
	switch {
	case headerAuth && (method == authSecretPost || method == authPrivateKeyJWT || method == authTLSClient):
		return fmt.Errorf("clientConfig.authMethod: %s and an Authorization header in clientConfig.headers are two client authentications (RFC 6749 section 2.3): remove one", method)
	}
	u, err := url.Parse(k.endpoint) // checkEndpoint parsed it already
	if err != nil {
		return errors.New("clientConfig.url: not a valid URL")
	}
	if method == authTLSClient && u.Scheme != "https" {
		return errors.New("clientConfig.authMethod: tls_client_auth needs an https clientConfig.url")
	}
	sendsSecret := method == authSecretBasic || method == authSecretPost || method == authPrivateKeyJWT
	for _, h := range k.headers {
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

func checkEndpoint(field, raw string) error {
	if raw == "" {
		return errors.New(field + ": required")
	}
	// Errors name the problem, never the value: a secret pasted here must not reach the log.
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New(field + ": not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New(field + ": scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New(field + ": missing host")
	}
	if u.User != nil {
		return errors.New(field + ": credentials in the URL are not supported")
	}
	return nil
}
