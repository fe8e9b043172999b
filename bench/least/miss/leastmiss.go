// Package leastmiss is the least a correct cache miss can do under Yaegi: find the token, POST it
// form-encoded with Basic client credentials to the endpoint with a deadline, check the status
// and the media type, decode the JSON object with numbers kept as text, check active, evaluate one
// claim, set one identity header and call next. No cache, no coalescing, no retries, no guard
// and no time claims: no rewrite of the plugin's miss path can cost less. Every request is an
// introspection. BenchmarkTraefikPath and make bench (bench/run.sh) both run it.
package leastmiss

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config is the introspection endpoint and the client's Basic credentials.
type Config struct {
	URL          string `json:"url,omitempty"`
	ClientID     string `json:"clientId,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// CreateConfig returns the credentials of the bench's IdPs; the URL must be set.
func CreateConfig() *Config {
	return &Config{ClientID: "rs-basic", ClientSecret: "rs-basic-secret"}
}

// LeastMiss introspects every request's token.
type LeastMiss struct {
	next   http.Handler
	client *http.Client
	config Config
}

// New creates the middleware.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return &LeastMiss{next: next, client: client, config: *config}, nil
}

func (p *LeastMiss) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	vals := req.Header["Authorization"]
	if len(vals) != 1 || len(vals[0]) <= 7 || !strings.EqualFold(vals[0][:7], "Bearer ") {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(), 5*time.Second)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, p.config.URL, strings.NewReader("token="+url.QueryEscape(vals[0][7:])))
	if err != nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	out.SetBasicAuth(p.config.ClientID, p.config.ClientSecret)
	out.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	out.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(out)
	if err != nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	defer resp.Body.Close()
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || err != nil || mt != "application/json" {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if active, _ := claims["active"].(bool); !active {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	group, _ := claims["grp"].(string)
	if group != "admin" {
		http.Error(rw, "Forbidden", http.StatusForbidden)
		return
	}
	req.Header["Group"] = []string{group}
	p.next.ServeHTTP(rw, req)
}
