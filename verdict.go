package oauthintrospection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// verdict is what the middleware concluded from one introspection answer. It depends only on the
// answer and the immutable settings, so it can be reused for the same token.
type verdict struct {
	status     int      // the status to answer with; 0 forwards the request
	challenge  []string // the WWW-Authenticate value of a denial, if any
	retryAfter []string // the Retry-After value of a 503 the IdP guard gave, if any
	reason     string   // why, for the log; never contains the token
	exp        int64    // Unix time from which the token is expired; noExp when unknown
	nbf        int64    // Unix time before which the token is not valid; noNbf when unknown
	// names and values are the forwardHeaders to set, aligned: the verdict carries the header names
	// it was computed with, so no reader can apply its values under another layout.
	names  []string
	values []string // "" sends the header empty (a missing claim, as in Traefik Hub)
	// user holds the usernameClaim value, or is nil: Traefik's access log reads the user from the
	// request URL. A Userinfo cannot be changed, so one is built per answer and shared by every
	// request.
	user *url.Userinfo
}

// judge derives the verdict from an introspection answer.
func judge(s *settings, claims map[string]any) *verdict {
	// RFC 7662 section 2.2: only the JSON boolean true means active (anything else asserts false).
	if active, _ := claims["active"].(bool); !active {
		return reject(statusUnauthorized, challengeInvalid, "token is not active")
	}
	return judgeActive(s, claims)
}

// judgeActive derives the verdict from the answer of an active token: its time claims, the claims
// expression and the forwarded claims. (Apart from judge so that an inactive token, the answer to
// every bogus one, pays for none of its frame slots.)
func judgeActive(s *settings, claims map[string]any) *verdict {
	v := &verdict{exp: noExp, nbf: noNbf}
	var ok bool
	// claims[k] is nil for an absent claim too: either way the bound stays open.
	if raw := claims["exp"]; raw != nil {
		if v.exp, ok = timeClaim(raw); !ok {
			return reject(statusUnavailable, nil, "answer has a malformed exp")
		}
	}
	if raw := claims["nbf"]; raw != nil {
		if v.nbf, ok = timeClaim(raw); !ok {
			return reject(statusUnavailable, nil, "answer has a malformed nbf")
		}
	}
	if s.claims != nil && !evalClaims(s.claims, claims) {
		v.status = statusForbidden
		v.challenge = challengeScope
		v.reason = "claims expression is false"
		return v
	}
	forward := s.identity.forward
	v.names = s.identity.names
	v.values = make([]string, len(forward))
	for i, f := range forward {
		val, ok := forwardValue(claims, f.path)
		if !ok {
			return reject(statusUnavailable, nil, "claim for "+f.name+" has a control character")
		}
		v.values[i] = val
	}
	if s.usernamePath != nil && !setUser(v, claims, s.usernamePath) {
		return reject(statusUnavailable, nil, "usernameClaim has a control character")
	}
	return v
}

// setUser sets the access-log user of v from the usernameClaim at path. It returns false when the
// claim cannot be logged as it is: a line break would forge log lines.
func setUser(v *verdict, claims map[string]any, path []string) bool {
	username := ""
	if raw, found := lookupClaim(claims, path); found {
		username, _ = claimText(raw)
	}
	if !validHeaderValue(username) {
		return false
	}
	if username != "" {
		v.user = url.User(username)
	}
	return true
}

// timeClaim reads the value of a NumericDate claim (RFC 7519 section 2); ok is false when it is
// not a number.
func timeClaim(raw any) (int64, bool) {
	n, isNumber := raw.(json.Number)
	if !isNumber {
		return 0, false
	}
	// A JSON number is never NaN; one beyond float64 (1e400) gives ±Inf with an error.
	f, err := n.Float64()
	if err != nil {
		return 0, false
	}
	// Clamp before converting: a float beyond the int64 range converts to an arbitrary value (an nbf
	// of 1e19 would become MinInt64, "valid since forever").
	if f >= noExp {
		return noExp, true
	}
	if f <= noNbf {
		return noNbf, true
	}
	return int64(f), true
}

// validAt is the one rule for "valid now": a token is valid from its nbf, included, until its exp,
// excluded (RFC 7519 sections 4.1.4 and 4.1.5). checkTime applies it; the cache's pass window
// (setPass) is its bounds; fastHit and decide inline the same comparison (decide calls checkTime
// only for a verdict outside its bounds).
func validAt(nbf, exp, now int64) bool {
	return now >= nbf && now < exp
}

// checkTime rejects a token whose exp or nbf says it is not valid at now (RFC 7662 section 2.2),
// even when the IdP said it is active, and before the claims expression's refusal. It judges
// every request, cached verdicts included: those within their bounds are the verdict itself,
// which is why decide may leave them out. It does not modify v, which may be shared.
func checkTime(v *verdict, now int64) *verdict {
	if validAt(v.nbf, v.exp, now) {
		return v
	}
	if now >= v.exp {
		return reject(statusUnauthorized, challengeInvalid, "token expired")
	}
	return reject(statusUnauthorized, challengeInvalid, "token not yet valid")
}

// reject builds the verdict of a request that may not pass.
func reject(status int, challenge []string, reason string) *verdict {
	return &verdict{status: status, challenge: challenge, reason: reason, exp: noExp, nbf: noNbf}
}

// forwardValue renders a claim as a header value: strings as they are, numbers without exponent,
// booleans as true/false, arrays comma-joined and objects as JSON. A missing claim gives "".
// ok is false when the value cannot travel in a header (a control character).
func forwardValue(claims map[string]any, path []string) (string, bool) {
	// lookupClaim, written out for the usual top-level claim: a call costs more than this.
	var raw any
	if len(path) == 1 {
		raw = claims[path[0]]
	} else {
		raw, _ = lookupNested(claims, path)
	}
	text, isString := raw.(string)
	if isString {
		return text, validHeaderValue(text)
	}
	if raw == nil {
		return "", true
	}
	if n, isNumber := raw.(json.Number); isNumber {
		// The decoder let only a JSON number literal through: digits, signs, '.', 'e' and 'E'.
		return numberText(string(n)), true
	}
	text = headerText(raw)
	return text, validHeaderValue(text)
}

// headerText is forwardValue's rendering of a claim that is not a string.
func headerText(raw any) string {
	if text, ok := claimText(raw); ok {
		return text
	}
	return compositeText(raw)
}

// compositeText renders an array comma-joined and an object as JSON. It is headerText's second
// half, apart so that a scalar's call pays for none of its locals.
func compositeText(raw any) string {
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

// The claim document helpers below read the IdP's answer for forwardHeaders, usernameClaim and the
// claims language alike.

// lookupClaim walks nested JSON objects (map[string]any) along keys; false if any step is missing or
// not an object.
func lookupClaim(claims map[string]any, keys []string) (any, bool) {
	if len(keys) == 1 {
		// Most keys are top-level: this path makes no further call, and the loop's locals are
		// lookupNested's, since the interpreter allocates every local of a function on each call.
		v, ok := claims[keys[0]]
		return v, ok
	}
	return lookupNested(claims, keys)
}

// lookupNested is lookupClaim for paths of any other length.
func lookupNested(claims map[string]any, keys []string) (any, bool) {
	if len(keys) == 0 {
		return nil, false
	}
	cur := claims
	last := len(keys) - 1
	for i := 0; i < last; i++ {
		next, ok := cur[keys[i]].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	v, ok := cur[keys[last]]
	return v, ok
}

// claimText returns the canonical text of a scalar claim value: a string as is, a JSON number by its
// canonical text (see numberText), a boolean as "true" or "false". ok is false for anything else
// (nil, arrays, objects). A float64 is accepted too, as if the claims were decoded without UseNumber.
func claimText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return numberText(string(x)), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case float64:
		return floatText(x), true
	}
	return "", false
}

// numberText returns the canonical text of a JSON number literal, so that an IdP sending
// 1767225600, 1767225600.0 or 1.7672256e+09 matches the same expression value "1767225600".
// An integer literal is kept as written, without a float round trip, so that integers beyond
// float64 precision still compare exactly; any other literal is printed by floatText.
func numberText(n string) string {
	// An optional minus sign and decimal digits only: one compiled call instead of an interpreted
	// byte loop (docs/development.md, interpreter costs), and no call of our own.
	if digits := strings.TrimPrefix(n, "-"); digits != "" && strings.TrimLeft(digits, "0123456789") == "" {
		if n == "-0" {
			return "0"
		}
		return n
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		// Out of float64 range: keep the IdP's text rather than print an infinity.
		return n
	}
	return floatText(f)
}

// floatText prints f in decimal without an exponent: integral values as integers ("1767225600"),
// others with the fewest digits that round-trip ("0.5"). Negative zero prints as "0".
func floatText(f float64) string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// splitClaimPath splits a dot-separated claim path into keys: `\.` is a literal dot, `\\` a literal
// backslash; any other backslash sequence, an empty key (leading/trailing/double dot), or an empty
// path is an error.
func splitClaimPath(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("empty key path")
	}
	var keys []string
	var key []byte
	start := 0 // where the current key starts, for errors
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch c {
		case '\\':
			if i+1 == len(path) || (path[i+1] != '.' && path[i+1] != '\\') {
				return nil, fmt.Errorf(`bad escape at byte %d: only \. and \\ are allowed`, i)
			}
			i++
			key = append(key, path[i])
		case '.':
			if len(key) == 0 {
				return nil, fmt.Errorf("empty key at byte %d", start)
			}
			keys = append(keys, string(key))
			key = key[:0]
			start = i + 1
		default:
			key = append(key, c)
		}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("empty key at byte %d", start)
	}
	keys = append(keys, string(key))
	return keys, nil
}
