package oauthintrospection

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"strings"
)

// verdict is what the middleware concluded from one introspection answer. It depends only on the
// answer and the immutable settings, so it can be reused for the same token.
type verdict struct {
	status    int      // the status to answer with; 0 forwards the request
	challenge []string // the WWW-Authenticate value of a denial, if any
	reason    string   // why, for the log; never contains the token
	exp       int64    // Unix time from which the token is expired; math.MaxInt64 when unknown
	nbf       int64    // Unix time before which the token is not valid; math.MinInt64 when unknown
	// names and values are the forwardHeaders to set, aligned: the verdict carries the header names
	// it was computed with, so no reader can apply its values under another layout.
	names    []string
	values   []string // "" sends the header empty (a missing claim, as in Traefik Hub)
	username string   // the usernameClaim value, or ""
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
	forward := s.identity.forward
	v.names = s.identity.names
	v.values = make([]string, len(forward))
	for i, f := range forward {
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
	// A JSON number is never NaN; one beyond float64 (1e400) gives ±Inf with an error.
	f, err := n.Float64()
	if err != nil {
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
