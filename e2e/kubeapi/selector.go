package main

import (
	"fmt"
	"strings"
)

// requirement is one term of an equality-based label selector.
type requirement struct {
	key, value string
	op         string // "=", "!=", "exists", "!exists"
}

// parseSelector parses the equality-based selectors client-go sends ("a=b,c!=d,e,!f"). Set-based
// ones (in, notin) are refused rather than misread.
func parseSelector(s string) ([]requirement, error) {
	var out []requirement
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		switch {
		case term == "":
			continue
		case strings.Contains(term, " in ") || strings.Contains(term, " notin ") || strings.ContainsAny(term, "()"):
			return nil, fmt.Errorf("labelSelector %q: set-based terms are not supported here", s)
		case strings.Contains(term, "!="):
			k, v, _ := strings.Cut(term, "!=")
			out = append(out, requirement{strings.TrimSpace(k), strings.TrimSpace(v), "!="})
		case strings.Contains(term, "=="):
			k, v, _ := strings.Cut(term, "==")
			out = append(out, requirement{strings.TrimSpace(k), strings.TrimSpace(v), "="})
		case strings.Contains(term, "="):
			k, v, _ := strings.Cut(term, "=")
			out = append(out, requirement{strings.TrimSpace(k), strings.TrimSpace(v), "="})
		case strings.HasPrefix(term, "!"):
			out = append(out, requirement{key: strings.TrimSpace(term[1:]), op: "!exists"})
		default:
			out = append(out, requirement{key: term, op: "exists"})
		}
	}
	return out, nil
}

// selects reports whether labels satisfy every requirement. As in Kubernetes, k!=v holds for an
// object without the label k.
func selects(reqs []requirement, labels map[string]string) bool {
	for _, r := range reqs {
		v, has := labels[r.key]
		switch r.op {
		case "=":
			if !has || v != r.value {
				return false
			}
		case "!=":
			if has && v == r.value {
				return false
			}
		case "exists":
			if !has {
				return false
			}
		case "!exists":
			if has {
				return false
			}
		}
	}
	return true
}
