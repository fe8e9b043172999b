package oauthintrospection

import (
	"net/http"
	"net/url"
	"strings"
)

// Where a token was found, so that the credential can be removed before the request goes upstream.
const (
	fromNone = iota
	fromHeader
	fromQuery
	fromCookie
)

// tokenSource extracts the client's token. Sources are tried in the order header, query, cookie;
// the first one present in the request is used. A source that is present but malformed rejects the
// request: it is not skipped in favour of the next one, so a client cannot smuggle a second token.
type tokenSource struct {
	header string // canonical header name, or ""
	scheme string // auth scheme expected in header, or ""
	query  string
	cookie string
	maxLen int
}

// extract returns the token and where it came from. A non-empty reason means the request carries no
// usable token: from is fromNone when none was sent, and names the source when it was malformed.
// The reason never contains the token.
func (s *tokenSource) extract(req *http.Request) (token string, from int, reason string) {
	if s.header != "" {
		if vals := req.Header[s.header]; len(vals) > 0 {
			token, reason = s.fromHeaderValues(vals)
			if token != "" || reason != "" {
				return s.check(token, fromHeader, reason)
			}
		}
	}
	if s.query != "" {
		if vals, ok := req.URL.Query()[s.query]; ok {
			token, reason = single(vals, "query parameter")
			if token != "" || reason != "" {
				return s.check(token, fromQuery, reason)
			}
		}
	}
	if s.cookie != "" {
		token, reason = cookieValue(req, s.cookie)
		if token != "" || reason != "" {
			return s.check(token, fromCookie, reason)
		}
	}
	return "", fromNone, "no token"
}

// fromHeaderValues returns the token in the header values, ("", "") when the header holds no token,
// or a reason when it is malformed.
func (s *tokenSource) fromHeaderValues(vals []string) (string, string) {
	if len(vals) > 1 {
		return "", "several " + s.header + " headers"
	}
	// Only optional white space (RFC 9110 section 5.6.3) is trimmed; any other trailing byte, such
	// as CR or a no-break space, stays and makes the token malformed.
	v := strings.Trim(vals[0], " \t")
	if s.scheme == "" {
		return v, ""
	}
	// RFC 7235 section 2.1: credentials = auth-scheme [ 1*SP token68 ], scheme case-insensitive.
	if len(v) < len(s.scheme) || !strings.EqualFold(v[:len(s.scheme)], s.scheme) {
		return "", s.header + " header has another auth scheme"
	}
	rest := v[len(s.scheme):]
	if rest == "" {
		return "", "" // the scheme alone carries no token
	}
	if rest[0] != ' ' {
		return "", s.header + " header has another auth scheme"
	}
	return strings.TrimLeft(rest, " "), ""
}

// check applies the checks every token must pass, wherever it came from.
func (s *tokenSource) check(token string, from int, reason string) (string, int, string) {
	if reason != "" {
		return "", from, reason
	}
	if len(token) > s.maxLen {
		return "", from, "token longer than tokenSource.maxLength"
	}
	// Tokens are visible ASCII (RFC 6750 section 2.1 b64token, RFC 6749 appendix A.12 VSCHAR).
	// Anything else, including spaces, CR, LF and NUL, is malformed. Trimming every allowed byte
	// from both ends leaves something exactly when a byte is not allowed; it is one compiled call,
	// where a byte loop costs the interpreter about 0.5 µs a byte.
	if strings.Trim(token, visibleASCII) != "" {
		return "", from, "token has a character outside visible ASCII"
	}
	return token, from, ""
}

// visibleASCII holds every byte from 0x21 to 0x7e.
const visibleASCII = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

// single returns the only value of vals; several values are malformed, an empty one is no token.
func single(vals []string, what string) (string, string) {
	if len(vals) > 1 {
		return "", "several " + what + "s"
	}
	if len(vals) == 0 {
		return "", ""
	}
	return vals[0], ""
}

// cookieValue returns the value of the named cookie; duplicates are malformed.
func cookieValue(req *http.Request, name string) (string, string) {
	var vals []string
	for _, c := range req.Cookies() {
		if c.Name == name {
			vals = append(vals, c.Value)
		}
	}
	return single(vals, "cookie")
}

// strip removes the credential that carried the token, so it does not reach the upstream service.
func (s *tokenSource) strip(req *http.Request, from int) {
	switch from {
	case fromHeader:
		req.Header.Del(s.header)
	case fromQuery:
		req.URL.RawQuery = withoutQueryParam(req.URL.RawQuery, s.query)
		req.RequestURI = req.URL.RequestURI()
	case fromCookie:
		stripCookie(req, s.cookie)
	}
}

// withoutQueryParam drops every name=value pair of rawQuery whose decoded name is name, leaving
// the other pairs byte for byte as they were.
func withoutQueryParam(rawQuery, name string) string {
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		key := p
		if i := strings.IndexByte(p, '='); i >= 0 {
			key = p[:i]
		}
		if k, err := url.QueryUnescape(key); err == nil && k == name {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// stripCookie removes the named cookie from every Cookie header, keeping the others as they were.
func stripCookie(req *http.Request, name string) {
	var kept []string
	for _, line := range req.Header["Cookie"] {
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			key := part
			if i := strings.IndexByte(part, '='); i >= 0 {
				key = part[:i]
			}
			if part != "" && strings.TrimSpace(key) != name {
				kept = append(kept, part)
			}
		}
	}
	req.Header.Del("Cookie")
	if len(kept) > 0 {
		req.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}
