// Package oauthintrospection is a Traefik middleware plugin that authenticates requests with
// OAuth 2.0 Token Introspection (RFC 7662). It is compatible with the options of Traefik Hub's
// oAuthIntrospection middleware.
package oauthintrospection

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
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
	next http.Handler
	// settings, idp and cache come from the registry: every handler of one middleware name and
	// configuration runs on the same ones, whichever New built it.
	settings *settings
	idp      *idpClient
	cache    *verdictCache
	fast     *fastPath // nil when the configuration has no fast path
	// logf writes one log line; level is "debug" or "error". Tests replace it to capture output.
	logf func(level, msg string)
}

// New creates the middleware. It validates and compiles the whole configuration, does no network
// I/O and starts no goroutine: Traefik calls it again on every dynamic-configuration reload.
func New(ctx context.Context, next http.Handler, config *Config, name string) (handler http.Handler, err error) {
	// A panic in New stops Traefik's configuration goroutine, and with it all routing.
	defer func() {
		if r := recover(); r != nil {
			handler = nil
			err = errors.New("internal error while building middleware: " + panicText(r))
		}
	}()
	if next == nil {
		return nil, errors.New("next handler is nil")
	}
	s, err := compile(config)
	if err != nil {
		return nil, err
	}
	sh, made := sharedFor(name, config, s)
	lg := sh.log
	if made {
		// Once per configuration, not on every reload that rebuilds it.
		for _, w := range s.warnings {
			logLine(lg, "error", w)
		}
	}
	m := &middleware{next: next, settings: sh.settings, idp: sh.idp, cache: sh.cache}
	m.logf = func(level, msg string) { logLine(lg, level, msg) }
	m.fast = newFastPath(sh.settings, sh.cache, sh.idp)
	if r := sh.settings.revocation; r != nil {
		// A handler of its own, so that a middleware without revocation pays nothing for it.
		return &revocationHandler{m: m, path: r.path}, nil
	}
	return m, nil
}

// ServeHTTP authenticates the request. A cache hit is served by fastHit alone; everything else goes
// through serve. The request path is plain functions, not methods: under Yaegi a method call on an
// interpreted type costs several plain calls (docs/development.md, interpreter costs).
func (m *middleware) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if m.fast != nil {
		switch fastHit(m.fast, req) {
		case fastPassed:
			m.next.ServeHTTP(rw, req)
			return
		case fastUncached:
			serveUncached(m, rw, req)
			return
		}
	}
	serve(m, rw, req)
}

// serve is the general path: every token source, misses, denials and failures.
func serve(m *middleware, rw http.ResponseWriter, req *http.Request) {
	dropIdentity(req, &m.settings.identity)
	token, from, reason := extractToken(&m.settings.source, req)
	if reason != "" {
		deny(m, rw, reject(statusUnauthorized, challengeMissing, reason))
		return
	}
	decide(m, rw, req, token, from)
}

// decide answers a request whose token has been read: with the cached verdict while it is fresh,
// or else with the IdP's (resolveMiss). It denies the request, or forwards it with the identity of
// the answer. The verdict is checked at the time of the lookup for a cached answer, and at the time
// the answer arrived for a new one, since the IdP may take up to timeoutSeconds to answer. (The
// lookup and the time check are written out here: a call costs the interpreter more than they do.)
func decide(m *middleware, rw http.ResponseWriter, req *http.Request, token string, from tokenFrom) {
	var key cacheKey
	var rendered http.Header // nil unless some header is templated
	if m.idp.templated == nil {
		key = sha256.Sum256([]byte(token))
	} else if rendered, key = templatedKey(m, req, token); rendered == nil {
		deny(m, rw, reject(statusUnavailable, nil, "introspection failed"))
		return
	}
	now := time.Now().Unix()
	c := m.cache
	c.mu.RLock()
	e := c.entries[key]
	c.mu.RUnlock()
	var v *verdict
	if e != nil && now < e.freshUntil {
		v = e.v
	} else {
		v, now = resolveMiss(m, req, token, rendered, key)
	}
	// checkTime, only for a verdict outside its validity (validAt): a request that passes, and
	// one refused for any other reason (a bogus token's), skips its two calls.
	if now < v.nbf || now >= v.exp {
		v = checkTime(v, now)
	}
	if v.status != 0 {
		deny(m, rw, v)
		return
	}
	forward(m, rw, req, v, from)
}

// templatedKey renders the header templates for req and returns them with the cache key they make
// with token, or a nil header when they cannot be rendered (renderFor logs why).
func templatedKey(m *middleware, req *http.Request, token string) (http.Header, cacheKey) {
	rendered, reason := renderFor(m, req)
	if reason != "" {
		return nil, cacheKey{}
	}
	return rendered, tokenKey(token, rendered, m.idp.templated)
}

// renderFor renders the header templates for req, and logs why when it cannot. What a client
// causes is its own request's problem: DEBUG, so that clients cannot crowd the gateway's and the
// IdP's conditions out of the ERROR log.
func renderFor(m *middleware, req *http.Request) (http.Header, string) {
	rendered, reason, byClient := renderHeaders(m.idp, req)
	if reason != "" {
		level := "error"
		if byClient {
			level = "debug"
		}
		m.logf(level, "introspection failed: "+reason)
	}
	return rendered, reason
}

// resolveMiss handles a miss: one introspection per key at a time, whatever the number of requests
// waiting for it. A waiter gives up when its own request ends. The leader publishes its verdict on
// every path, a panic included, so that no waiter waits for an introspection nobody will finish.
func resolveMiss(m *middleware, req *http.Request, token string, rendered http.Header, key cacheKey) (v *verdict, now int64) {
	c := m.cache
	p, leader := join(c, key)
	if !leader {
		return awaitLeader(p, req)
	}
	published := false
	defer func() {
		if published {
			return
		}
		r := recover()
		v = reject(statusUnavailable, nil, "internal error")
		now = 0
		publish(c, key, p, v, nil, false)
		m.logf("error", "introspection failed: internal error ("+panicText(r)+")")
	}()
	// The call outlives the leader's request if that one is cancelled: others may be waiting
	// (askIdP makes it in a context of its own).
	var answered bool
	if m.settings.shared == nil {
		// askTiers, without a shared tier: apart so that a miss pays for none of its frame slots.
		v, _, answered = askIdP(m, rendered, token)
	} else {
		v, answered = askTiers(m, rendered, token, key)
	}
	now = time.Now().Unix()
	if answered {
		// The IdP's answer replaces whatever was cached, even when it may not be cached itself:
		// an inactive token must never come back through staleIfErrorSeconds. A refusal without
		// negativeTtlSeconds is never kept, so it does not open newEntry's frame slots to learn
		// that: the answer to every bogus token of a flood (docs/performance.md, denial paths).
		var e *cacheEntry
		if v.status != statusUnauthorized || c.negTTL > 0 {
			e = newEntry(c, v, now)
		}
		publish(c, key, p, v, e, true)
	} else {
		v = failedMiss(m, key, p, v, now)
	}
	published = true
	return v, now
}

// awaitLeader waits for the introspection p that another request leads, until its own request ends.
func awaitLeader(p *pending, req *http.Request) (*verdict, int64) {
	p.waiters.Add(1)
	if firstReady(p.done, req.Context().Done()) {
		return p.v, time.Now().Unix()
	}
	return reject(statusUnavailable, nil, "request ended while waiting for introspection"), 0
}

// failedMiss publishes the outcome of an introspection that got no answer: a cached answer within
// its staleIfErrorSeconds window stands in for it, or else the failure v itself.
func failedMiss(m *middleware, key cacheKey, p *pending, v *verdict, now int64) *verdict {
	c := m.cache
	old := cachedEntry(c, key)
	if old != nil && now < old.staleUntil {
		m.logf("debug", "IdP failing: serving a cached answer past its TTL (staleIfErrorSeconds)")
		publish(c, key, p, old.v, stillStale(old, now), false)
		return old.v
	}
	publish(c, key, p, v, nil, false)
	return v
}

// askIdP introspects token and judges the answer, which it returns too. answered is false when no
// answer came: the IdP could not be reached, failed, or sent something that is not an
// introspection response, or the guard refused the call (guard.go). Only then may a stale cached
// answer stand in.
func askIdP(m *middleware, rendered http.Header, token string) (*verdict, map[string]any, bool) {
	// Locals for what is used more than once: each selector costs a frame slot at each use.
	c := m.idp
	g := c.guard
	// timeoutSeconds bounds everything from here: the wait for an in-flight slot too.
	deadline := time.Now().Add(c.timeout)
	refused, probe := enterIdP(g, deadline)
	if refused != nil {
		return refused, nil, false
	}
	defer leaveIdP(g)
	if probe {
		deadline = probeDeadline(g, deadline)
	}
	claims, reason := introspect(c, deadline, rendered, token, probe)
	if c.watched {
		logFileProblems(m, idpFileProblems(m.idp))
	}
	if reason != "" {
		return failedIntrospection(m, reason), nil, false
	}
	return judge(m.settings, claims), claims, true
}

// failedIntrospection logs why an introspection got no answer and returns the 503 verdict.
func failedIntrospection(m *middleware, reason string) *verdict {
	m.logf("error", "introspection failed: "+reason)
	return reject(statusUnavailable, nil, "introspection failed")
}

// deny answers a request that may not pass (RFC 6750 section 3). The body is only the status
// text; the reason goes to the debug log.
func deny(m *middleware, rw http.ResponseWriter, v *verdict) {
	h := rw.Header()
	if v.challenge != nil {
		h["Www-Authenticate"] = v.challenge
	}
	if v.retryAfter != nil {
		h["Retry-After"] = v.retryAfter
	}
	h.Set("Cache-Control", "no-store")
	m.logf("debug", "rejected with "+strconv.Itoa(v.status)+": "+v.reason)
	http.Error(rw, http.StatusText(v.status), v.status)
}

// forward sends an authenticated request upstream with the identity taken from the IdP's answer.
// The verdict carries its own header names, so it can only ever be written as it was computed.
func forward(m *middleware, rw http.ResponseWriter, req *http.Request, v *verdict, from tokenFrom) {
	s := m.settings
	keep := fromNone
	if s.forwardAuth {
		keep = from
	}
	stripCarriers(&s.source, req, keep)
	for i, name := range v.names {
		req.Header[name] = []string{v.values[i]}
	}
	// Traefik's access log reads the user from the URL, as its own BasicAuth sets it.
	req.URL.User = v.user
	m.next.ServeHTTP(rw, req)
}

// dropIdentity removes everything a client could send to impersonate the IdP's answer: the
// forwarded headers and their underscore twins, even when their claim turns out missing, and any
// user in the request URL.
func dropIdentity(req *http.Request, id *identityHeaders) {
	h := req.Header
	for _, name := range id.names {
		delete(h, name)
	}
	for _, name := range id.twins {
		delete(h, name)
	}
	if id.scan != nil {
		for name := range h {
			if id.scan[foldHeaderName(name)] {
				delete(h, name)
			}
		}
	}
	req.URL.User = nil
}

// panicText describes a recovered panic for the log: the runtime's own message for a runtime
// error, and only the value's type otherwise, since a value can hold anything.
func panicText(r any) string {
	if e, ok := r.(runtime.Error); ok {
		return e.Error()
	}
	return fmt.Sprintf("panic of type %T", r)
}
