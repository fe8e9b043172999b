// Package oauthintrospection is a Traefik middleware plugin that authenticates requests with
// OAuth 2.0 Token Introspection (RFC 7662). It is compatible with the options of Traefik Hub's
// oAuthIntrospection middleware.
package oauthintrospection

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// realm is announced in every RFC 6750 challenge.
const realm = `Bearer realm="traefik"`

// Challenges of RFC 6750 section 3, precomputed so that a denial allocates nothing for them.
var (
	challengeMissing = []string{realm}
	challengeInvalid = []string{realm + `, error="invalid_token"`}
	challengeScope   = []string{realm + `, error="insufficient_scope"`}
)

// middleware is the http.Handler built by New.
type middleware struct {
	next     http.Handler
	name     string
	settings *settings
	idp      *idpClient
	cache    *verdictCache
	fast     *fastPath // nil when the configuration has no fast path
	// logf writes one log line; level is "debug" or "error". Tests replace it to capture output.
	logf func(level, msg string)
}

// verdict is what the middleware concluded from one introspection answer. It depends only on the
// answer and the immutable settings, so it can be reused for the same token.
type verdict struct {
	status    int      // the status to answer with; 0 forwards the request
	challenge []string // the WWW-Authenticate value of a denial, if any
	reason    string   // why, for the log; never contains the token
	exp       int64    // Unix time from which the token is expired; math.MaxInt64 when unknown
	nbf       int64    // Unix time before which the token is not valid; math.MinInt64 when unknown
	values    []string // forwardHeaders values aligned with settings.forward; "" leaves the header absent
	username  string   // the usernameClaim value, or ""
}

// New creates the middleware. It validates and compiles the whole configuration, does no network
// I/O and starts no goroutine: Traefik calls it again on every dynamic-configuration reload.
func New(ctx context.Context, next http.Handler, config *Config, name string) (handler http.Handler, err error) {
	// A panic in New stops Traefik's configuration goroutine, and with it all routing.
	defer func() {
		if r := recover(); r != nil {
			handler = nil
			err = fmt.Errorf("internal error while building middleware: %v", r)
		}
	}()
	if next == nil {
		return nil, errors.New("next handler is nil")
	}
	s, err := compile(config)
	if err != nil {
		return nil, err
	}
	sh := sharedFor(name, config, s)
	lg := sh.log
	m := &middleware{next: next, name: name, settings: s, idp: sh.idp, cache: sh.cache}
	m.logf = func(level, msg string) { lg.log(level, msg) }
	m.fast = newFastPath(s, sh.cache, sh.idp)
	return m, nil
}

// ServeHTTP authenticates the request. It is kept small on purpose: the interpreter pays for every
// local of a function on each call, so everything but a cache hit lives in other functions.
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if m.fast != nil && fastHit(m.fast, req) {
		m.next.ServeHTTP(rw, req)
		return
	}
	m.serve(rw, req)
}

// serve is the general path: every token source, misses, denials and failures.
func (m *middleware) serve(rw http.ResponseWriter, req *http.Request) {
	m.dropClientIdentity(req)
	token, from, reason := m.settings.source.extract(req)
	if reason != "" {
		m.deny(rw, reject(http.StatusUnauthorized, challengeMissing, reason))
		return
	}
	now := time.Now().Unix()
	v := checkTime(m.cached(req, token, now), now)
	if v.status != 0 {
		m.deny(rw, v)
		return
	}
	m.forward(rw, req, v, from)
}

// dropClientIdentity removes everything a client could send to impersonate the IdP's answer: the
// forwarded headers, even when their claim turns out missing, and any user in the request URL.
func (m *middleware) dropClientIdentity(req *http.Request) {
	for _, f := range m.settings.forward {
		delete(req.Header, f.name)
	}
	req.URL.User = nil
}

// introspect calls the IdP and turns its answer into a verdict.
func (m *middleware) introspect(ctx context.Context, rendered http.Header, token string) *verdict {
	claims, outcome, reason := m.idp.introspect(ctx, rendered, token)
	if m.idp.auth != nil {
		if e := m.idp.auth.secret.takeError(); e != "" {
			m.logf("error", "clientConfig.clientSecretFile: re-reading failed, the last secret stays in use: "+e)
		}
	}
	if outcome != idpAnswered {
		m.logf("error", "introspection failed: "+reason)
		return reject(http.StatusServiceUnavailable, nil, "introspection failed")
	}
	return judge(m.settings, claims)
}

// judge derives the verdict from an introspection answer.
func judge(s *settings, claims map[string]any) *verdict {
	// RFC 7662 section 2.2: only the JSON boolean true means active.
	if active, ok := claims["active"].(bool); !ok || !active {
		return reject(http.StatusUnauthorized, challengeInvalid, "token is not active")
	}
	v := &verdict{}
	var ok bool
	if v.exp, ok = timeClaim(claims, "exp", math.MaxInt64); !ok {
		return reject(http.StatusServiceUnavailable, nil, "answer has a malformed exp")
	}
	if v.nbf, ok = timeClaim(claims, "nbf", math.MinInt64); !ok {
		return reject(http.StatusServiceUnavailable, nil, "answer has a malformed nbf")
	}
	if s.claims != nil && !s.claims.eval(claims) {
		v.status = http.StatusForbidden
		v.challenge = challengeScope
		v.reason = "claims expression is false"
		return v
	}
	v.values = make([]string, len(s.forward))
	for i, f := range s.forward {
		val, ok := forwardValue(claims, f.path)
		if !ok {
			return reject(http.StatusServiceUnavailable, nil, "claim for "+f.name+" has a control character")
		}
		v.values[i] = val
	}
	if s.usernamePath != nil {
		if raw, found := lookupClaim(claims, s.usernamePath); found {
			v.username, _ = claimText(raw)
		}
		// The user reaches Traefik's access log as it is: a line break would forge log lines.
		if !validHeaderValue(v.username) {
			return reject(http.StatusServiceUnavailable, nil, "usernameClaim has a control character")
		}
	}
	return v
}

// timeClaim reads a NumericDate claim (RFC 7519 section 2). missing is returned when the claim is
// absent; ok is false when it is present but not a number.
func timeClaim(claims map[string]any, key string, missing int64) (int64, bool) {
	raw, found := claims[key]
	if !found || raw == nil {
		return missing, true
	}
	n, isNumber := raw.(json.Number)
	if !isNumber {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	// Clamp before converting: a float beyond the int64 range converts to an arbitrary value (an nbf
	// of 1e19 would become MinInt64, "valid since forever").
	if f >= math.MaxInt64 {
		return math.MaxInt64, true
	}
	if f <= math.MinInt64 {
		return math.MinInt64, true
	}
	return int64(f), true
}

// checkTime rejects a token whose exp or nbf says it is not valid at now (RFC 7662 section 2.2),
// even when the IdP said it is active. It runs on every request, cached verdicts included. It does
// not modify v, which may be shared.
func checkTime(v *verdict, now int64) *verdict {
	if now >= v.exp {
		return reject(http.StatusUnauthorized, challengeInvalid, "token expired")
	}
	if now < v.nbf {
		return reject(http.StatusUnauthorized, challengeInvalid, "token not yet valid")
	}
	return v
}

// reject builds the verdict of a request that may not pass.
func reject(status int, challenge []string, reason string) *verdict {
	return &verdict{status: status, challenge: challenge, reason: reason, exp: math.MaxInt64, nbf: math.MinInt64}
}

// deny answers a request that may not pass (RFC 6750 section 3). The body is only the status
// text; the reason goes to the debug log.
func (m *middleware) deny(rw http.ResponseWriter, v *verdict) {
	h := rw.Header()
	if v.challenge != nil {
		h["Www-Authenticate"] = v.challenge
	}
	h.Set("Cache-Control", "no-store")
	m.logf("debug", "rejected with "+strconv.Itoa(v.status)+": "+v.reason)
	http.Error(rw, http.StatusText(v.status), v.status)
}

// forward sends an authenticated request upstream with the identity taken from the IdP's answer.
func (m *middleware) forward(rw http.ResponseWriter, req *http.Request, v *verdict, from int) {
	s := m.settings
	if !s.forwardAuth {
		s.source.strip(req, from)
	}
	for i, f := range s.forward {
		if v.values[i] != "" {
			req.Header[f.name] = []string{v.values[i]}
		}
	}
	if v.username != "" {
		// Traefik's access log reads the user from the URL, as its own BasicAuth sets it.
		req.URL.User = url.User(v.username)
	}
	m.next.ServeHTTP(rw, req)
}

// forwardValue renders a claim as a header value: strings as they are, numbers without exponent,
// booleans as true/false, arrays comma-joined and objects as JSON. A missing claim gives "".
// ok is false when the value cannot travel in a header (a control character).
func forwardValue(claims map[string]any, path []string) (string, bool) {
	raw, found := lookupClaim(claims, path)
	if !found || raw == nil {
		return "", true
	}
	text := headerText(raw)
	return text, validHeaderValue(text)
}

func headerText(raw any) string {
	if text, ok := claimText(raw); ok {
		return text
	}
	if list, ok := raw.([]any); ok {
		parts := make([]string, 0, len(list))
		for _, item := range list {
			parts = append(parts, headerText(item))
		}
		return strings.Join(parts, ",")
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(raw); err != nil {
		return ""
	}
	return strings.TrimSuffix(b.String(), "\n")
}
