// Package echo is the upstream service of the end-to-end tests and the demo: it answers every
// request with 200 and a JSON description of what it received, so that a test can check what the
// middleware forwarded (headers, URL, query, user).
package echo

import (
	"encoding/json"
	"net/http"
)

// Request is the JSON body the handler answers with.
type Request struct {
	Method     string              `json:"method"`
	Host       string              `json:"host"`
	URL        string              `json:"url"`
	Path       string              `json:"path"`
	RawQuery   string              `json:"rawQuery"`
	RequestURI string              `json:"requestURI"`
	Headers    map[string][]string `json:"headers"`
}

// Handler answers 200 with the JSON Request describing req.
func Handler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body := Request{
			Method:     req.Method,
			Host:       req.Host,
			URL:        req.URL.String(),
			Path:       req.URL.Path,
			RawQuery:   req.URL.RawQuery,
			RequestURI: req.RequestURI,
			Headers:    req.Header,
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(rw)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
}
