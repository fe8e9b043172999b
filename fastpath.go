package oauthintrospection

import (
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fastPath serves the product's hot path, a cache hit that lets the request through, in a single
// function. Under Yaegi every call costs microseconds, a method call on an interpreted type most
// (docs/development.md, interpreter costs). The general path (serve) makes some
// twenty such calls; this one makes as few as it can, and anything unusual falls back to serve,
// which decides again from scratch. Everything it needs is computed once, in New.
type fastPath struct {
	header    string // canonical name of the header that carries the token
	prefix    string // the auth scheme and one space, e.g. "Bearer ", or "" without a scheme
	maxHeader int    // longest header value accepted: the prefix and tokenSource.maxLength
	// drop is what every request that passes loses: the underscore twins of the forwardHeaders
	// names and of the token's header, and the token's header itself unless forwardAuthorization.
	// The forwardHeaders names themselves are always overwritten.
	drop []string
	// withQuery and withCookie tell that the query or a cookie may carry a token too: a request
	// that has a query string or cookies goes to serve, which removes those carriers. other is
	// set when either is.
	withQuery  bool
	withCookie bool
	other      bool
	// The cache's lock and map, held directly: each selector costs the interpreter on every hit.
	// The map is made once with the cache and never replaced.
	mu      *sync.RWMutex
	entries map[cacheKey]*cacheEntry
}

// newFastPath returns the fast path of s, or nil when s has none: the token must come from a
// header, the cache key must not depend on rendered header templates, and the twins of every
// forwarded header must be listed.
func newFastPath(s *settings, cache *verdictCache, idp *idpClient) *fastPath {
	if s.source.header == "" || idp.templated != nil || s.cache.TTLSeconds == 0 || s.identity.scan != nil || s.source.headerScan {
		return nil
	}
	f := &fastPath{
		header: s.source.header, maxHeader: s.source.maxLen,
		withQuery: s.source.query != "", withCookie: s.source.cookie != "",
		mu: &cache.mu, entries: cache.entries,
	}
	if s.source.scheme != "" {
		f.prefix = s.source.scheme + " "
	}
	f.maxHeader += len(f.prefix)
	f.other = f.withQuery || f.withCookie
	f.drop = append(append(f.drop, s.identity.twins...), s.source.headerTwins...)
	if !s.forwardAuth {
		f.drop = append(f.drop, f.header)
	}
	return f
}

// otherCarrier reports whether req has a query string or cookies that may carry a token. It is
// apart from fastHit, which calls it only when the query or a cookie is configured, so that other
// hits pay for none of its frame slots.
func otherCarrier(f *fastPath, req *http.Request) bool {
	return (f.withQuery && req.URL.RawQuery != "") || (f.withCookie && len(req.Header["Cookie"]) != 0)
}

// What fastHit did with a request.
const (
	fastDeclined = iota // not a request the fast path reads: serve decides from scratch
	fastPassed          // a cache hit, prepared for upstream
	// fastUncached: the header carries a well-formed token that the cache does not let through
	// (unknown, expired, refused): serveUncached takes it from there, without reading it again.
	fastUncached
)

// fastHit returns fastPassed when req was authorized by a fresh cached verdict, and then prepares
// it for upstream exactly as serve would: identity headers from the verdict only, the credential
// removed unless forwardAuthorization, and the access-log user. Otherwise req is untouched, and
// fastUncached tells that its header holds a token exactly as extractToken would read it.
// exp and nbf are checked on every hit (RFC 7662 section 2.2).
func fastHit(f *fastPath, req *http.Request) int {
	h := req.Header
	vals := h[f.header]
	if len(vals) != 1 || (f.other && otherCarrier(f, req)) {
		return fastDeclined
	}
	value := vals[0]
	n := len(f.prefix)
	if len(value) <= n || len(value) > f.maxHeader || !strings.EqualFold(value[:n], f.prefix) {
		return fastDeclined
	}
	// Only a token that passed these checks was ever introspected, so only such a token's digest
	// can be in the cache; they are repeated here all the same (the scheme, the length, the bytes),
	// so that the fast path never relies on that: FuzzTokenExtract plants any digest and checks that
	// the fast path is never less strict than extract. The length is checked first so that a huge
	// header costs no hashing.
	token := value[n:]
	if strings.Trim(token, visibleASCII) != "" {
		return fastDeclined
	}
	f.mu.RLock()
	e := f.entries[sha256.Sum256([]byte(token))]
	f.mu.RUnlock()
	if e == nil {
		return fastUncached
	}
	// validAt(e.passFrom, e.passUntil, now), inlined: a call costs the interpreter more than the
	// rest of this check (docs/development.md, interpreter costs).
	now := time.Now().Unix()
	if now >= e.passUntil || now < e.passFrom {
		return fastUncached
	}
	for _, name := range f.drop {
		delete(h, name)
	}
	values := e.v.values
	for i, name := range e.v.names {
		h[name] = []string{values[i]}
	}
	req.URL.User = e.v.user // nil removes a client's own
	return fastPassed
}

// serveUncached is serve for a request that fastHit found to carry a well-formed header token, which
// the cache did not let through: the token is the header's value after the scheme, as extractToken
// reads it (FuzzTokenExtract checks that they agree).
func serveUncached(m *middleware, rw http.ResponseWriter, req *http.Request) {
	token := req.Header[m.fast.header][0][len(m.fast.prefix):]
	dropIdentity(req, &m.settings.identity)
	decide(m, rw, req, token, fromHeader)
}
