package oauthintrospection

// Header names and values: the compiled forwardHeaders, which the middleware writes and so must keep
// a client from forging, and the clientConfig.headers sent to the IdP. Header names are RFC 9110
// tokens; values may hold no control character but tab.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/template"
)

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
// One compiled call instead of an interpreted byte loop (docs/development.md, interpreter costs).
func validHeaderValue(s string) bool {
	return !strings.ContainsAny(s, controlChars)
}

// controlChars are the ASCII control characters but tab, and DEL.
const controlChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\x0e\x0f" +
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
