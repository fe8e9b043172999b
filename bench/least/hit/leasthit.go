// Package leasthit is the least a correct cache hit can do under Yaegi: find the one token header,
// check its scheme, hash the token, look the digest up under a read lock, check the entry's
// validity window against the clock, set one identity header and call next. No rewrite of the
// plugin's hit path can cost less, so the distance from the pass-through floor to this plugin is
// the part of a hit that only a faster interpreter would remove. Its one cache entry is the
// configured token. BenchmarkTraefikPath and make bench (bench/run.sh) both run it.
package leasthit

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config names the one token the cache holds, and the group it forwards.
type Config struct {
	Token string `json:"token,omitempty"`
	Group string `json:"group,omitempty"`
}

// CreateConfig returns the token of BenchmarkTraefikPath.
func CreateConfig() *Config {
	return &Config{Token: "2YotnFZFEjr1zCsicMWpAA-bench-token", Group: "admin"}
}

type entry struct {
	from, until int64
	group       string
}

// LeastHit serves its one cached token.
type LeastHit struct {
	next    http.Handler
	mu      *sync.RWMutex
	entries map[[32]byte]*entry
}

// New creates the middleware with its one entry.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	entries := map[[32]byte]*entry{sha256.Sum256([]byte(config.Token)): {from: 0, until: 1 << 62, group: config.Group}}
	return &LeastHit{next: next, mu: &sync.RWMutex{}, entries: entries}, nil
}

func (p *LeastHit) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	vals := req.Header["Authorization"]
	if len(vals) != 1 || len(vals[0]) <= 7 || !strings.EqualFold(vals[0][:7], "Bearer ") {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	p.mu.RLock()
	e := p.entries[sha256.Sum256([]byte(vals[0][7:]))]
	p.mu.RUnlock()
	now := time.Now().Unix()
	if e == nil || now >= e.until || now < e.from {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	req.Header["Group"] = []string{e.group}
	p.next.ServeHTTP(rw, req)
}
