package oauthintrospection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"
)

// revocation is the compiled revocation option: the middleware answers POSTs to path as an RFC
// 7009 revocation endpoint. It sends the request on to the IdP's endpoint as it came, with the
// client's own authentication, and relays the answer. When the IdP answers 200, the token is
// forgotten: removed from the in-process cache of every middleware of this Traefik, and, with
// cache.redis, marked in Redis so that no replica reads an answer stored before the revocation.
// It never decides a verdict: the next request with the token is introspected again.
type revocation struct {
	path string
	url  string
	// slots bounds the revocations in flight at clientConfig.maxInFlight, apart from the
	// introspections' slots: whoever can reach path can send revocations, and a flood of them
	// must neither flood the IdP nor take the slots of the tokens waiting to be introspected.
	// slotsV and slotV are slots and its element for reflect (sendWithin).
	slots  chan struct{}
	slotsV reflect.Value
	slotV  reflect.Value
}

// maxRevocationBody bounds a revocation request and the IdP's answer to it.
const maxRevocationBody = 64 << 10

// relayedHeaders are the headers of the IdP's answer the client gets (RFC 7009 section 2.2 and
// RFC 6749 section 5.2 errors, RFC 6750 challenges).
var relayedHeaders = []string{"Content-Type", "Cache-Control", "Pragma", "Www-Authenticate"}

func compileRevocation(r RevocationConfig, maxInFlight int) (*revocation, error) {
	if r.Path == "" && r.URL == "" {
		return nil, nil
	}
	if r.Path == "" || !strings.HasPrefix(r.Path, "/") {
		return nil, errors.New("revocation.path: must be an absolute path (starting with /) when revocation.url is set")
	}
	if err := checkEndpoint("revocation.url", r.URL); err != nil {
		return nil, err
	}
	slots := make(chan struct{}, maxInFlight)
	return &revocation{path: r.Path, url: r.URL, slots: slots, slotsV: reflect.ValueOf(slots), slotV: reflect.ValueOf(struct{}{})}, nil
}

// revocationHandler is the middleware of a configuration with revocation: it answers path
// itself, and hands every other request to the middleware.
type revocationHandler struct {
	m    *middleware
	path string
}

// ServeHTTP answers path, and every other request as the middleware's own ServeHTTP does. It
// repeats that method's few lines rather than call it: under Yaegi a call of a method costs several
// plain calls (docs/development.md, interpreter costs), and the first two made at once race inside
// the interpreter (interpreter.go).
// TestRevocationHandlerServesAsMiddleware checks that both answer alike.
func (h *revocationHandler) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	m := h.m
	if req.URL.Path == h.path {
		serveRevocation(m, rw, req)
		return
	}
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

// serveRevocation answers a request to revocation.path.
func serveRevocation(m *middleware, rw http.ResponseWriter, req *http.Request) {
	rw.Header().Set("Cache-Control", "no-store")
	if req.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, maxRevocationBody+1))
	if err != nil || len(body) > maxRevocationBody {
		http.Error(rw, http.StatusText(http.StatusBadRequest), http.StatusBadRequest)
		return
	}
	token, ok := revocationToken(req, body)
	if !ok {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusBadRequest)
		_, _ = rw.Write([]byte(`{"error":"invalid_request","error_description":"a form with one token"}`))
		return
	}
	r := m.settings.revocation
	if !sendWithin(r.slotsV, r.slotV, m.idp.guard.wait, time.Now().Add(m.idp.timeout)) {
		m.logf("debug", "revocation refused: too many revocations in flight")
		rw.Header().Set("Retry-After", "1")
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	// The slot is held until the token is forgotten: the marker writes are bounded with the relays.
	defer func() { <-r.slots }()
	status, header, answer, failure := relayRevocation(m, req, body)
	if failure != "" {
		m.logf("error", "revocation failed: "+failure)
		http.Error(rw, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	if status == http.StatusOK {
		forgetToken(m, token)
	}
	for _, name := range relayedHeaders {
		if v := header.Get(name); v != "" {
			rw.Header().Set(name, v)
		}
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(answer)
}

// revocationToken returns the token of a revocation request: RFC 7009 section 2.1 sends it as
// the token parameter of an application/x-www-form-urlencoded body, and RFC 6749 section 3.1
// forbids any parameter twice. A body the relay cannot read exactly so is refused, not relayed:
// an IdP that reads more leniently (a multipart form, ";" between parameters) could revoke a
// token that the middleware would never forget, and each token costs a marker in every Redis, so
// one request must not carry thousands.
func revocationToken(req *http.Request, body []byte) (string, bool) {
	mediaType, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return "", false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return "", false
	}
	for _, values := range form {
		if len(values) != 1 {
			return "", false
		}
	}
	token := form.Get("token")
	return token, token != ""
}

// relayRevocation sends the client's revocation request to the IdP, with the client's
// authentication (its Authorization header, or its credentials in the body), within
// timeoutSeconds, and returns the IdP's answer, or why there is none. It presents no client
// certificate (relayClient).
func relayRevocation(m *middleware, req *http.Request, body []byte) (int, http.Header, []byte, string) {
	r := m.settings.revocation
	ctx, cancel := context.WithTimeout(req.Context(), m.idp.timeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, "the request could not be made"
	}
	out.Header.Set("Content-Type", req.Header.Get("Content-Type"))
	out.Header.Set("Accept", "application/json")
	if a := req.Header.Get("Authorization"); a != "" {
		out.Header.Set("Authorization", a)
	}
	resp, err := relayClient(m.idp, time.Now()).Do(out)
	if err != nil {
		return 0, nil, nil, transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxRevocationBody))
	if err != nil {
		return 0, nil, nil, transportFailure(ctx, err)
	}
	return resp.StatusCode, resp.Header, answer, ""
}

// relayClient returns the client that relays revocations to the IdP: the endpoint's TLS
// configuration (its CA, its server verification) without the client certificate. A client
// certificate authenticates the gateway itself (RFC 8705 section 2), and the callers of the
// revocation path must not borrow the gateway's identity. It follows the endpoint's client when
// that one is replaced for new TLS files.
func relayClient(c *idpClient, now time.Time) *http.Client {
	endpoint := httpClient(c, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relayOf != endpoint {
		conf := c.conf.Clone()
		if conf != nil {
			conf.Certificates = nil
		}
		if c.relay != nil {
			c.relay.CloseIdleConnections()
		}
		c.relay = newHTTPClient(c, conf)
		c.relayOf = endpoint
	}
	return c.relay
}

// forgetToken removes token from every middleware's in-process cache, and from Redis. Redis is
// marked first: an introspection that starts once the local caches have forgotten the token must
// find the marker, and not an answer stored before the revocation.
func forgetToken(m *middleware, token string) {
	key := cacheKey(sha256.Sum256([]byte(token)))
	// Every shared tier of this Traefik, not only this middleware's: other middlewares may keep
	// their answers under other prefixes, or in another Redis.
	now := time.Now()
	tiers, longest := registeredTiers()
	for _, t := range tiers {
		sharedMark(m, t, sharedMarkerKey(t, key), now, longest[t.revoked])
	}
	for _, c := range registeredCaches() {
		c.mu.Lock()
		if c.keyed {
			// Its keys hold rendered header templates too: forget everything.
			forgetAll(c)
		} else {
			forgetRevoked(c, key)
		}
		c.mu.Unlock()
	}
	m.logf("debug", "a token was revoked through the middleware and forgotten")
}
