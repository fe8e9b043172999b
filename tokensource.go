package oauthintrospection

import (
	"net/http"
	"net/url"
	"strings"
)

// tokenFrom says where a request's token was found.
type tokenFrom int

// The places a token can come from.
const (
	fromNone tokenFrom = iota
	fromHeader
	fromQuery
	fromCookie
)

// tokenSource extracts the client's token. Sources are tried in the order header, query, cookie;
// the first one present in the request is used. A source that is present but malformed rejects the
// request: it is not skipped in favour of the next one, so a client cannot smuggle a second token.
//
// Copies are counted on the raw request (the raw query string, the raw Cookie headers), never on
// what Go's parsers keep: url.ParseQuery drops a pair it cannot decode or that holds a ";", and
// net/http drops a cookie with an invalid value, so the parsed forms can show one copy where the
// client sent two. A copy is any name a backend may read as the configured one (see foldParamName).
// Counting and stripping use the same rule, so what is counted is what is removed.
type tokenSource struct {
	header string // canonical header name, or ""
	scheme string // auth scheme expected in header, or ""
	query  string
	cookie string
	maxLen int
	// headerTwins are the other names a CGI-style backend reads as header (see headerTwins).
	// headerScan is set instead when header has too many separators to list them.
	headerTwins []string
	headerScan  bool
	// queryFold and cookieFold are the folded names of query and cookie (foldParamName).
	queryFold  string
	cookieFold string
}

// extractToken returns the token and where it came from. A non-empty reason means the request
// carries no usable token: from is fromNone when none was sent, and names the source when it was
// malformed. The reason never contains the token. It and its helpers are plain functions: under
// Yaegi a method call costs several plain calls (docs/development.md, interpreter costs).
func extractToken(s *tokenSource, req *http.Request) (token string, from tokenFrom, reason string) {
	if s.header != "" {
		if vals := req.Header[s.header]; len(vals) > 0 {
			token, reason = fromHeaderValues(s, vals)
			if token != "" || reason != "" {
				return checkToken(s, token, fromHeader, reason)
			}
		}
	}
	if s.query == "" && s.cookie == "" {
		return "", fromNone, "no token"
	}
	return fromQueryOrCookie(s, req)
}

// fromQueryOrCookie is extractToken for the query and cookie sources, tried in that order.
func fromQueryOrCookie(s *tokenSource, req *http.Request) (token string, from tokenFrom, reason string) {
	if s.query != "" && req.URL.RawQuery != "" {
		token, reason = queryToken(req.URL.RawQuery, s.queryFold)
		if token != "" || reason != "" {
			return checkToken(s, token, fromQuery, reason)
		}
	}
	if s.cookie != "" {
		token, reason = cookieToken(req.Header["Cookie"], s.cookieFold)
		if token != "" || reason != "" {
			return checkToken(s, token, fromCookie, reason)
		}
	}
	return "", fromNone, "no token"
}

// fromHeaderValues returns the token in the header values, ("", "") when the header holds no token,
// or a reason when it is malformed.
func fromHeaderValues(s *tokenSource, vals []string) (string, string) {
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

// checkToken applies the checks every token must pass, wherever it came from.
func checkToken(s *tokenSource, token string, from tokenFrom, reason string) (string, tokenFrom, string) {
	if reason != "" {
		return "", from, reason
	}
	if len(token) > s.maxLen {
		return "", from, "token longer than tokenSource.maxLength"
	}
	// Tokens are visible ASCII (RFC 6750 section 2.1 b64token, RFC 6749 appendix A.12 VSCHAR).
	// Anything else, including spaces, CR, LF and NUL, is malformed. Trimming every allowed byte
	// from both ends leaves something exactly when a byte is not allowed: one compiled call instead
	// of an interpreted byte loop (docs/development.md, interpreter costs).
	if strings.Trim(token, visibleASCII) != "" {
		return "", from, "token has a character outside visible ASCII"
	}
	return token, from, ""
}

// visibleASCII holds every byte from 0x21 to 0x7e.
const visibleASCII = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"

// queryToken returns the value of the query parameter whose folded name is fold in rawQuery, ""
// when it is absent or empty, or a reason when it is sent more than once or cannot be read
// unambiguously.
func queryToken(rawQuery, fold string) (string, string) {
	copies := 0
	value, readable := "", true
	for _, pair := range strings.Split(rawQuery, "&") {
		if !isQueryCarrier(pair, fold) {
			continue
		}
		copies++
		var err error
		_, raw, _ := strings.Cut(pair, "=")
		value, err = url.QueryUnescape(raw)
		// A ";" is a pair separator to some backends (and makes Go drop the pair): the value
		// would not mean the same upstream as here.
		readable = err == nil && !strings.Contains(pair, ";")
	}
	switch {
	case copies > 1:
		return "", "several query parameters"
	case !readable:
		return "", "query parameter cannot be decoded"
	}
	return value, ""
}

// isQueryCarrier reports whether the &-separated pair carries the parameter whose folded name is
// fold: its decoded name folds to it, or so does the name of one of its ;-separated parts, as
// some backends split them.
func isQueryCarrier(pair, fold string) bool {
	for _, part := range strings.Split(pair, ";") {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && foldParamName(k) == fold {
			return true
		}
	}
	return false
}

// foldParamName is the form in which some backend may read a query parameter or cookie name: PHP
// drops leading blanks, cuts the name at a NUL and turns ".", " " and "[" into "_"; ASP.NET Core
// compares names without case. Two names with the same fold are one credential to somebody.
func foldParamName(name string) string {
	name = strings.TrimLeft(name, " ")
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return strings.ToLower(paramFolder.Replace(name))
}

var paramFolder = strings.NewReplacer(".", "_", " ", "_", "[", "_")

// cookieToken returns the value of the cookie whose folded name is fold in the raw Cookie header
// lines, "" when it is absent or empty, or a reason when it is sent more than once or its value is
// not a cookie value.
func cookieToken(lines []string, fold string) (string, string) {
	copies := 0
	value := ""
	for _, line := range lines {
		for _, part := range strings.Split(line, ";") {
			if !isCookieCarrier(part, fold) {
				continue
			}
			copies++
			_, v, _ := strings.Cut(part, "=")
			value = strings.TrimSpace(v)
			if strings.Contains(part, ",") {
				// RFC 2109 parsers split on ",": the value would not mean the same upstream.
				return "", "cookie value is malformed"
			}
		}
	}
	if copies > 1 {
		return "", "several cookies"
	}
	// RFC 6265 section 4.1.1: a value may be enclosed in double quotes, and contains none inside,
	// nor a backslash. net/http drops such a cookie; here it is malformed.
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	if strings.ContainsAny(value, "\"\\") {
		return "", "cookie value is malformed"
	}
	return value, ""
}

// isCookieCarrier reports whether the ;-separated part of a Cookie header carries the cookie whose
// folded name is fold, also when RFC 2109 parsers split it further on ",".
func isCookieCarrier(part, fold string) bool {
	for _, piece := range strings.Split(part, ",") {
		key, _, _ := strings.Cut(piece, "=")
		if foldParamName(strings.TrimSpace(key)) == fold {
			return true
		}
	}
	return false
}

// stripCarriers removes every configured place a token can travel in: the header (with its
// underscore twins), every copy of the query parameter and of the cookie. Only keep, the place the
// checked token came from, stays, and only when forwardAuthorization asks for it: an unchecked
// second credential never reaches the upstream service.
func stripCarriers(s *tokenSource, req *http.Request, keep tokenFrom) {
	if s.header != "" {
		if keep != fromHeader {
			delete(req.Header, s.header)
		}
		for _, twin := range s.headerTwins {
			delete(req.Header, twin)
		}
		if s.headerScan {
			stripHeaderFolds(req, s.header)
		}
	}
	if s.query != "" || s.cookie != "" {
		stripQueryAndCookie(s, req, keep)
	}
}

// stripHeaderFolds removes every header other than header whose name folds to the same.
func stripHeaderFolds(req *http.Request, header string) {
	fold := foldHeaderName(header)
	for name := range req.Header {
		if name != header && foldHeaderName(name) == fold {
			delete(req.Header, name)
		}
	}
}

// stripQueryAndCookie is stripCarriers for the query and cookie sources.
func stripQueryAndCookie(s *tokenSource, req *http.Request, keep tokenFrom) {
	if s.query != "" && keep != fromQuery && req.URL.RawQuery != "" {
		req.URL.RawQuery = withoutQueryParam(req.URL.RawQuery, s.queryFold)
		req.RequestURI = req.URL.RequestURI()
	}
	if s.cookie != "" && keep != fromCookie && len(req.Header["Cookie"]) > 0 {
		stripCookie(req, s.cookieFold)
	}
}

// withoutQueryParam drops every pair of rawQuery that carries the parameter whose folded name is
// fold (isQueryCarrier), leaving the other pairs byte for byte as they were.
func withoutQueryParam(rawQuery, fold string) string {
	parts := strings.Split(rawQuery, "&")
	kept := parts[:0]
	for _, p := range parts {
		if !isQueryCarrier(p, fold) {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "&")
}

// stripCookie removes every cookie whose folded name is fold from every Cookie header, keeping
// the others as they were.
func stripCookie(req *http.Request, fold string) {
	var kept []string
	for _, line := range req.Header["Cookie"] {
		for _, part := range strings.Split(line, ";") {
			part = strings.TrimSpace(part)
			if part != "" && !isCookieCarrier(part, fold) {
				kept = append(kept, part)
			}
		}
	}
	delete(req.Header, "Cookie")
	if len(kept) > 0 {
		req.Header["Cookie"] = []string{strings.Join(kept, "; ")}
	}
}
