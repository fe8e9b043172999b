// Package leastfull is the least a correct plugin can do for make bench's configuration of ours,
// written for the interpreter alone: as few functions as Go allows, no function of its own on a
// hit and one on a miss. It does what ours does for that configuration (forwardHeaders Group and
// Expires-At, claims Equals(`grp`, `admin`), a static Authorization to the IdP, the default cache,
// guard and token source), and nothing it could leave out:
//
//   - a hit: one Authorization header, its scheme, its length and bytes, the digest looked up under
//     a read lock, the entry's window against the clock, the client's identity headers and their
//     underscore twins and the credential removed, two headers set, the access-log user cleared;
//   - a miss: the same checks, then coalescing (one introspection per digest, waiters released even
//     if the leader panics), the guard's in-flight bound (a send that does not wait) and its stall
//     counters, the breaker's context and its state, the POST with the hint and a deadline, the
//     status, the media type, a size cap, one JSON object with numbers kept as text, active, exp
//     and nbf, the claim check, both values checked for control characters, the entry built,
//     stored with ring eviction under both bounds and published.
//
// What it leaves out is configuration it does not have (other token sources, templates, client
// authentication methods, Redis, usernameClaim, nested claims, the claims language's other
// functions) and the failure paths' detail: a retry, the breaker's counting, stale answers, the
// log. Those cost ours frame slots on a miss only where they share a function with the path that
// runs. So the distance from this plugin to ours is the price of ours being written in small
// functions, one concern each, and configurable; the distance from least-miss to this plugin is the
// price of the features. BenchmarkTraefikPath and make bench (bench/run.sh) both run it.
package leastfull

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is the introspection endpoint, the static Authorization it sends and the cache's bounds.
type Config struct {
	URL           string `json:"url,omitempty"`
	Authorization string `json:"authorization,omitempty"`
	TTLSeconds    int    `json:"ttlSeconds,omitempty"`
	MaxEntries    int    `json:"maxEntries,omitempty"`
	MaxBytes      int    `json:"maxBytes,omitempty"`
	MaxInFlight   int    `json:"maxInFlight,omitempty"`
	// ForwardAuthorization keeps the credential on a forwarded request, as ours does when set.
	ForwardAuthorization bool `json:"forwardAuthorization,omitempty"`
}

// CreateConfig returns our plugin's defaults; the URL and the Authorization must be set.
func CreateConfig() *Config {
	return &Config{TTLSeconds: 300, MaxEntries: 10000, MaxBytes: 64 << 20, MaxInFlight: 64}
}

const (
	visibleASCII = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	controlChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\x0e\x0f" +
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
	maxHeader     = 4096 + 7
	entryOverhead = 360
	timeout       = 5 * time.Second
	status200     = 200
)

type entry struct {
	group, expires string
	exp, nbf       int64
	fresh          int64
	slot, size     int
	allow          bool // active
	forbidden      bool // active, and the claim check is false
}

type pending struct {
	done chan struct{}
	e    *entry
}

// LeastFull caches verdicts and introspects on a miss.
type LeastFull struct {
	next   http.Handler
	client *http.Client
	url    string
	base   http.Header
	ttl    int64
	keep   bool // forwardAuthorization

	mu       *sync.RWMutex
	entries  map[[32]byte]*entry
	inflight map[[32]byte]*pending
	ring     [][32]byte
	head     int
	used     int
	max      int
	bytes    int
	maxBytes int

	slotsV, slotV   reflect.Value
	entered, ended  *atomic.Int64
	armed, troubled *atomic.Bool
	parent          *atomic.Value
}

// New creates the middleware.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	base := http.Header{}
	base.Set("Content-Type", "application/x-www-form-urlencoded")
	base.Set("Accept", "application/json")
	base.Set("Authorization", config.Authorization)
	parent := &atomic.Value{}
	parent.Store(context.Background())
	return &LeastFull{
		next: next, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		url: config.URL, base: base, ttl: int64(config.TTLSeconds), keep: config.ForwardAuthorization,
		mu: &sync.RWMutex{}, entries: map[[32]byte]*entry{}, inflight: map[[32]byte]*pending{},
		max: config.MaxEntries, maxBytes: config.MaxBytes,
		slotsV: reflect.ValueOf(make(chan struct{}, config.MaxInFlight)), slotV: reflect.ValueOf(struct{}{}),
		entered: &atomic.Int64{}, ended: &atomic.Int64{}, armed: &atomic.Bool{}, troubled: &atomic.Bool{},
		parent: parent,
	}, nil
}

// ServeHTTP serves a hit, and hands a miss to miss.
func (p *LeastFull) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	vals := h["Authorization"]
	if len(vals) != 1 || len(vals[0]) <= 7 || len(vals[0]) > maxHeader || !strings.EqualFold(vals[0][:7], "Bearer ") {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	token := vals[0][7:]
	if strings.Trim(token, visibleASCII) != "" {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	key := sha256.Sum256([]byte(token))
	p.mu.RLock()
	e := p.entries[key]
	p.mu.RUnlock()
	now := time.Now().Unix()
	if e == nil || now >= e.fresh {
		e, now = miss(p, req, token, key)
	}
	if e == nil {
		http.Error(rw, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if e.forbidden {
		http.Error(rw, "Forbidden", http.StatusForbidden)
		return
	}
	if !e.allow || now >= e.exp || now < e.nbf {
		http.Error(rw, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if !p.keep {
		delete(h, "Authorization")
	}
	delete(h, "Group")
	delete(h, "Expires-At")
	delete(h, "Expires_At")
	h["Group"] = []string{e.group}
	h["Expires-At"] = []string{e.expires}
	req.URL.User = nil
	p.next.ServeHTTP(rw, req)
}

// miss introspects token, once per key at a time, and returns its entry, or nil on a failure.
func miss(p *LeastFull, req *http.Request, token string, key [32]byte) (e *entry, now int64) {
	p.mu.Lock()
	if w := p.inflight[key]; w != nil {
		p.mu.Unlock()
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.done)}, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(req.Context().Done())}}
		if chosen, _, _ := reflect.Select(cases); chosen != 0 {
			return nil, 0
		}
		return w.e, time.Now().Unix()
	}
	w := &pending{done: make(chan struct{})}
	p.inflight[key] = w
	p.mu.Unlock()
	published, holding := false, false
	defer func() {
		if published {
			return
		}
		recover()
		if holding {
			p.ended.Add(1)
			p.slotsV.Recv()
		}
		p.mu.Lock()
		delete(p.inflight, key)
		p.mu.Unlock()
		close(w.done)
		e, now = nil, 0
	}()

	// The guard: an in-flight slot without waiting, the stall counters, the breaker's context.
	if p.troubled.Load() || !p.slotsV.TrySend(p.slotV) {
		return nil, 0
	}
	holding = true
	p.entered.Add(1)
	if !p.armed.Load() {
		p.armed.Store(true)
	}
	ctx, cancel := context.WithDeadline(p.parent.Load().(context.Context), time.Now().Add(timeout))
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader("token="+url.QueryEscape(token)+"&token_type_hint=access_token"))
	if err != nil {
		return nil, 0
	}
	out.Header = p.base.Clone()
	resp, err := p.client.Do(out)
	var claims map[string]any
	if err == nil {
		mt, _, mtErr := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode == status200 && mtErr == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			body := &io.LimitedReader{R: resp.Body, N: 1<<20 + 1}
			dec := json.NewDecoder(body)
			dec.UseNumber()
			var v any
			if dec.Decode(&v) == nil {
				if _, end := dec.Token(); end == io.EOF && body.N != 0 {
					claims, _ = v.(map[string]any)
				}
			}
		}
		resp.Body.Close()
	}
	holding = false
	p.ended.Add(1)
	p.slotsV.Recv()
	if claims == nil {
		return nil, 0
	}

	// The verdict: active, exp and nbf, the claim, the forwarded values.
	now = time.Now().Unix()
	e = &entry{exp: math.MaxInt64, nbf: math.MinInt64}
	e.allow, _ = claims["active"].(bool)
	if raw := claims["exp"]; raw != nil {
		n, isNumber := raw.(json.Number)
		f, err := n.Float64()
		if !isNumber || err != nil || f < -1e18 || f > 1e18 {
			return nil, 0
		}
		e.exp = int64(f)
		e.expires = string(n)
		if digits := strings.TrimPrefix(e.expires, "-"); digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
			e.expires = strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	if raw := claims["nbf"]; raw != nil {
		n, isNumber := raw.(json.Number)
		f, err := n.Float64()
		if !isNumber || err != nil || f < -1e18 || f > 1e18 {
			return nil, 0
		}
		e.nbf = int64(f)
	}
	e.group, _ = claims["grp"].(string)
	if strings.ContainsAny(e.group, controlChars) {
		return nil, 0
	}
	// An inactive token is not cached (negativeTtlSeconds 0); a false claim check is (403).
	store := e.allow
	e.forbidden = e.allow && e.group != "admin"

	// The entry: fresh until the TTL or exp, stored in the ring under both bounds, and published.
	e.fresh = now + p.ttl
	if e.exp < e.fresh {
		e.fresh = e.exp
	}
	e.size = entryOverhead + len(e.group) + len(e.expires)
	w.e = e
	p.mu.Lock()
	delete(p.inflight, key)
	if !store {
		delete(p.entries, key)
	} else if old := p.entries[key]; old != nil {
		e.slot = old.slot
		p.bytes -= old.size
	} else {
		if p.used == p.max {
			evict(p)
		}
		e.slot = (p.head + p.used) % p.max
		if e.slot == len(p.ring) {
			p.ring = append(p.ring, key)
		} else {
			p.ring[e.slot] = key
		}
		p.used++
	}
	if store {
		p.entries[key] = e
		p.bytes += e.size
		for p.bytes > p.maxBytes && p.used > 0 {
			evict(p)
		}
	}
	p.mu.Unlock()
	close(w.done)
	published = true
	return e, now
}

// evict frees the oldest slot, and removes its entry if the entry still owns it. It runs only when
// the cache is full.
func evict(p *LeastFull) {
	key := p.ring[p.head]
	if e := p.entries[key]; e != nil && e.slot == p.head {
		delete(p.entries, key)
		p.bytes -= e.size
	}
	p.head = (p.head + 1) % p.max
	p.used--
}
