package oauthintrospection

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"
)

// maxResponseBytes caps the introspection response we read; a larger body is an error.
const maxResponseBytes = 1 << 20

// idpClient calls an RFC 7662 introspection endpoint. It is safe for concurrent use.
//
// Its request path is plain functions, not methods, and what does not depend on the request is
// built once in New: under Yaegi a method call on an interpreted type costs several plain calls
// (docs/development.md, interpreter costs), and a miss makes a dozen calls.
type idpClient struct {
	clientSettings
	static http.Header // all the headers, when none is templated; read-only
	// base is the header every call starts from: the static configured headers (when none is
	// templated), the Authorization of a fixed client authentication, Content-Type and Accept.
	// Read-only: each call clones it.
	base http.Header
	// formTail follows the token in the body: the hint and the fields of a fixed client
	// authentication. perCall is set when the credentials change from call to call (a secret or a
	// key read from a file, a signed assertion): attempt then asks auth for them.
	formTail string
	perCall  bool
	// watched is set when some file is re-read (clientSecretFile, privateKeyFile, tls.*): only then
	// can there be file problems to log. notice is raised when one is recorded (watchProblems):
	// idpFileProblems takes them only then, not on every call.
	watched bool
	notice  atomic.Bool

	// guard bounds the calls in flight and holds the circuit breaker (guard.go).
	guard *idpGuard

	mu sync.Mutex
	// Guarded by mu: replaced when a TLS file changes. Without tls, it is never replaced.
	client *http.Client
	// Guarded by mu: the TLS configuration client was made with, which no transport holds (a
	// transport writes to its own on first use), and the client that relays revocations, made
	// with it for the client relayOf (relayClient).
	conf    *tls.Config
	relay   *http.Client
	relayOf *http.Client
}

// attemptResult is what one HTTP exchange with the endpoint produced.
type attemptResult struct {
	claims map[string]any // the answer, when err is empty
	err    string         // why the attempt failed; never contains the token or IdP body
	retry  bool           // the failure is transient (transport error, 5xx, 429)
	after  time.Duration  // the IdP's Retry-After, if any
	// outcome is what the circuit breaker counts: callAnswered (the zero value: any answer but a
	// 5xx, a 429 or a 200 that is not an introspection answer), callFailed or callSkipped
	// (guard.go).
	outcome int
}

// newIDPClient makes the client of cs; its guard logs the breaker's transitions to l.
func newIDPClient(cs clientSettings, l *logger) *idpClient {
	c := &idpClient{clientSettings: cs, formTail: cs.hintField, base: http.Header{}, guard: newGuard(cs, l)}
	// Two statements: under Yaegi v0.16.1 a parallel assignment with a call in it left c.conf nil.
	c.client = newHTTPClient(c, cs.tlsConfig)
	c.conf = cs.tlsConfig
	if c.templated == nil {
		// Nothing depends on the request: build the headers once, not per call.
		c.static, _, _ = renderHeaders(c, nil)
		for k, v := range c.static {
			c.base[k] = v
		}
	}
	if a := c.auth; a != nil {
		c.perCall = !a.fixed
		c.watched = len(a.files) != 0
		if a.fixed {
			c.formTail += a.fixedForm
			// Configured client authentication wins over an Authorization in clientConfig.headers.
			if a.fixedHeader != "" {
				c.base["Authorization"] = []string{a.fixedHeader}
			}
		}
	}
	c.watched = c.watched || c.tls != nil
	watchProblems(c)
	// Our Content-Type and Accept win over configured headers: the body is ours.
	c.base["Content-Type"] = []string{"application/x-www-form-urlencoded"}
	c.base["Accept"] = []string{"application/json"}
	return c
}

// newHTTPClient makes the HTTP client of the endpoint with the TLS configuration conf.
func newHTTPClient(c *idpClient, conf *tls.Config) *http.Client {
	// No custom dialer: Yaegi v0.16.1 rejects a method value of net.Dialer in a struct literal, and
	// the request context's deadline already bounds the dial.
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSClientConfig:       conf.Clone(), // the transport writes to it on first use
		TLSHandshakeTimeout:   c.timeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: transport,
		// RFC 7662 section 2: the answer comes from this endpoint. A redirect is a failure,
		// never followed, so a token is never sent to another URL. (The parameters are named
		// because Yaegi v0.16.1 mis-assigns the results of a func literal with unnamed ones.)
		CheckRedirect: func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpClient returns the client to call the endpoint with. When a TLS file changed, it first
// replaces the client by one with the new files (renewClient).
func httpClient(c *idpClient, now time.Time) *http.Client {
	if c.tls == nil {
		return c.client
	}
	if pollTLS(c.tls, now) {
		renewClient(c, now)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// renewClient replaces the client by one with the TLS files as they now are, and closes the old
// one's idle connections. If the files do not make a TLS configuration, the old client stays and
// the problem is logged. (Apart from httpClient, which runs on every call: under Yaegi a call pays
// for the frame slots of all its branches.)
func renewClient(c *idpClient, now time.Time) {
	c.tls.building.Lock()
	defer c.tls.building.Unlock()
	conf := rebuildTLS(c.tls, now)
	if conf == nil {
		return
	}
	fresh := newHTTPClient(c, conf)
	c.mu.Lock()
	old := c.client
	c.client = fresh
	c.conf = conf
	c.mu.Unlock()
	old.CloseIdleConnections()
}

// introspect asks the endpoint about token, sending the extra headers (the rendered templates,
// nil when none is templated), and returns the decoded answer, or why there is none. Transient
// failures are retried with backoff until maxRetries or the deadline runs out, or until the
// circuit breaker is no longer closed. The whole introspection is one call to the breaker: probe
// says that it is the half-open probe, and it counts once, however many attempts it made.
func introspect(c *idpClient, deadline time.Time, extra http.Header, token string, probe bool) (map[string]any, string) {
	g := c.guard
	// An opening breaker ends the call at once (guard.go).
	ctx, cancel := context.WithDeadline(callParent(g), deadline)
	defer cancel()
	client := c.client
	if c.tls != nil {
		client = httpClient(c, time.Now())
	}
	// RFC 7662 section 2.1: the token and its hint, form-encoded in a POST body.
	form := "token=" + url.QueryEscape(token) + c.formTail
	r := attempt(c, ctx, client, form, extra)
	if r.err != "" {
		r = retry(c, ctx, client, form, extra, r)
	}
	if r.outcome != callAnswered || probe || g.troubled.Load() {
		// A clean answer to a breaker with no failure counted changes nothing (callEnded).
		callEnded(g, probe, r.outcome, r.err)
	}
	return r.claims, r.err
}

// retry goes on after a failed first attempt r: transient failures are tried again with backoff
// while the breaker stays closed, until maxRetries or the deadline runs out. (Apart from
// introspect so that a miss answered at once pays for none of the loop's frame slots.)
func retry(c *idpClient, ctx context.Context, client *http.Client, form string, extra http.Header, r attemptResult) attemptResult {
	attempts := 1
	for r.retry && attempts <= c.maxRetries && pause(ctx, c, attempts-1, r.after) {
		if !closedBreaker(c.guard) {
			r.err += " (attempts: " + strconv.Itoa(attempts) + "; the circuit breaker is open)"
			return r
		}
		attempts++
		if r = attempt(c, ctx, client, form, extra); r.err == "" {
			return r
		}
	}
	r.err = fmt.Sprintf("%s (attempts: %d)", r.err, attempts)
	return r
}

// pause waits before retry number try+1. It returns false when the wait would not fit in the
// remaining time, or the context ends first.
func pause(ctx context.Context, c *idpClient, try int, after time.Duration) bool {
	wait := backoff(try)
	if after > wait {
		wait = after
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
		return false
	}
	if g := c.guard; g.slowAfter > 0 {
		// Pausing, the call waits on no IdP: the IdP answered it (a 503 with Retry-After, say),
		// so the stall check counts it as ended until it tries again (guard.go).
		g.ended.Add(1)
		defer g.entered.Add(1)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	return firstReady(t.C, ctx.Done())
}

// backoff is 50 ms doubled at each retry, with jitter so that many gateways do not retry in step.
func backoff(try int) time.Duration {
	base := 50 * time.Millisecond << uint(try)
	return base/2 + time.Duration(rand.Int63n(int64(base/2)+1))
}

// attempt makes one HTTP exchange. extra holds the rendered header templates, nil when none is
// templated; they never replace base's headers.
func attempt(c *idpClient, ctx context.Context, client *http.Client, form string, extra http.Header) attemptResult {
	authorization := ""
	if c.perCall {
		var reason string
		if form, authorization, reason = perCallCredentials(c, form); reason != "" {
			return attemptResult{err: reason, outcome: callSkipped}
		}
	}
	req, err := http.NewRequestWithContext(ctx, methodPost, c.endpoint, strings.NewReader(form))
	if err != nil {
		return attemptResult{err: "building the request failed", outcome: callSkipped}
	}
	req.Header = c.base.Clone()
	if extra != nil {
		addRendered(req.Header, c.base, extra)
	}
	// Configured client authentication wins over an Authorization in clientConfig.headers.
	if authorization != "" {
		req.Header["Authorization"] = []string{authorization}
	}
	resp, err := client.Do(req)
	if err != nil {
		return transportResult(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != statusOK {
		return statusResult(resp)
	}
	claims, reason := decodeAnswer(resp)
	if reason != "" {
		// A 200 that is not an introspection answer, or whose body stalled or broke off, is no
		// answer: the breaker counts it as failed.
		return attemptResult{err: reason, outcome: callFailed}
	}
	return attemptResult{claims: claims}
}

// addRendered adds the rendered header templates extra to h, except those that would replace one of
// base's. (Apart from attempt so that a call without templates pays for none of the loop's slots.)
func addRendered(h, base, extra http.Header) {
	for k, v := range extra {
		if _, ours := base[k]; !ours {
			h[k] = v
		}
	}
}

// transportResult is the outcome of an exchange that failed in transport. It is worth retrying,
// unless our own deadline or the client ended it. (The failure branches of attempt are functions
// of their own so that a successful exchange pays for none of their frame slots.)
func transportResult(ctx context.Context, err error) attemptResult {
	return attemptResult{err: "request failed: " + transportFailure(ctx, err), retry: ctx.Err() == nil, outcome: callFailed}
}

// statusResult is the outcome of an answer other than 200: a 429 or a 5xx is transient (RFC 6585
// section 4, RFC 9110 section 15.6), and its Retry-After is kept.
func statusResult(resp *http.Response) attemptResult {
	transient := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	r := attemptResult{
		err:   "endpoint answered " + strconv.Itoa(resp.StatusCode) + oauthErrorCode(resp),
		retry: transient,
		after: retryAfter(resp.Header.Get("Retry-After")),
	}
	if transient {
		r.outcome = callFailed
	}
	return r
}

// perCallCredentials returns form with the credentials of a client authentication that change
// from call to call (a secret or a key read from a file, a signed assertion), and the
// Authorization header value they need, if any.
func perCallCredentials(c *idpClient, form string) (string, string, string) {
	fields, authorization, err := credentials(c.auth, time.Now())
	if err != nil {
		return "", "", "client authentication: " + err.Error()
	}
	return form + fields, authorization, ""
}

// oauthErrorCode returns " (code)" for the RFC 6749 section 5.2 error code of an error answer, such
// as invalid_client when the IdP refuses our credentials, so the log names the cause. Only a known
// code is kept; the body is otherwise discarded, never sent to a client.
// Reading it (up to 4 KiB) also lets the connection be reused.
func oauthErrorCode(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var answer map[string]any
	if json.Unmarshal(body, &answer) != nil {
		return ""
	}
	code, _ := answer["error"].(string)
	if !knownErrorCodes[code] {
		return ""
	}
	return " (" + code + ")"
}

// knownErrorCodes are the error codes of RFC 6749 section 5.2 and RFC 7009 section 2.2.1. Only
// these are logged, so an IdP cannot put arbitrary text, such as the token, into our log.
var knownErrorCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true, "unauthorized_client": true,
	"unsupported_grant_type": true, "invalid_scope": true, "unsupported_token_type": true,
	"server_error": true, "temporarily_unavailable": true, "access_denied": true,
}

// retryAfter parses a Retry-After header in seconds (RFC 9110 section 10.2.3). The HTTP-date form
// and nonsense are ignored: the caller falls back to its own backoff.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 3600 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// errTrailingData marks an answer with more than one JSON value.
var errTrailingData = errors.New("data after the JSON object")

// decodeAnswer reads a 200 response: it must be application/json, at most maxResponseBytes, and hold
// exactly one JSON object (RFC 7662 section 2.2). Numbers stay json.Number so that exp prints as the
// IdP sent it and claims compare by text.
func decodeAnswer(resp *http.Response) (map[string]any, string) {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, "answer is not application/json"
	}
	// The decoder reads the body itself, through a reader that stops one byte past the cap: N
	// is 0 afterwards exactly when the answer is larger than the cap.
	body := &io.LimitedReader{R: resp.Body, N: maxResponseBytes + 1}
	obj, err := decodeObject(body)
	switch {
	case body.N == 0:
		return nil, "answer larger than 1 MiB"
	case err == errTrailingData:
		return nil, "answer has data after the JSON object"
	case err == errNotObject:
		return nil, "answer is not a JSON object"
	case err != nil:
		return nil, "answer is not JSON, or reading it failed"
	}
	return obj, ""
}

// errNotObject marks a JSON value that is not an object.
var errNotObject = errors.New("not a JSON object")

// decodeObject reads exactly one JSON object from r, numbers kept as json.Number: an IdP's answer,
// or one stored in the shared tier.
func decodeObject(r io.Reader) (map[string]any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, end := dec.Token(); end != io.EOF {
		return nil, errTrailingData
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errNotObject
	}
	return obj, nil
}

// renderHeaders evaluates the configured header templates for this request. The result is only
// read: attempt copies its values into each outgoing request. On failure it returns why, naming
// the template and never its value, and whether the request itself is the cause.
func renderHeaders(c *idpClient, incoming *http.Request) (h http.Header, reason string, byClient bool) {
	if c.static != nil {
		return c.static, "", false
	}
	h = make(http.Header, len(c.headers))
	for _, t := range c.headers {
		v := t.value
		if t.tmpl != nil {
			if v, reason, byClient = renderHeader(t.tmpl, incoming); reason != "" {
				return nil, "clientConfig.headers." + t.name + ": " + reason, byClient
			}
		}
		h[t.name] = []string{v}
	}
	return h, "", false
}

// renderHeader executes one header template with .Request bound to the incoming request. A result
// that cannot be sent as a header value fails too: the request put a control character in it.
// Either failure depends on the request (a missing cookie, a header that does not parse), so it is
// the client's: a template that fails on every request is found at New (checkTemplates).
func renderHeader(tmpl *template.Template, incoming *http.Request) (value, reason string, byClient bool) {
	var b strings.Builder
	if err := tmpl.Execute(&b, map[string]any{"Request": incoming}); err != nil {
		// The error may quote request data (url.Parse quotes its input): keep it out of the log.
		return "", "executing the template failed", true
	}
	if !validHeaderValue(b.String()) {
		return "", "the rendered value has a control character", true
	}
	return b.String(), "", false
}
