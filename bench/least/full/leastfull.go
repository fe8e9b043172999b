// Package leastfull is the least a correct plugin can do for make bench's configuration of ours,
// written for the interpreter alone: one function of its own on a hit and two on a miss (the
// second a deferred recovery), everything else in functions that only failures and rare cases
// call. It does what ours does for that configuration (tokenSource Authorization with Bearer, a
// static Authorization to the IdP, forwardHeaders Group and Expires-At, claims
// Equals(`grp`, `admin`), the defaults of the cache, the guard and the breaker), and nothing it
// could leave out:
//
//   - a hit: one Authorization header, its scheme, its length and bytes, the digest looked up under
//     a read lock, the entry's pass window against the clock, the underscore twin and the
//     credential removed, two headers set, the access-log user cleared;
//   - a miss: the same checks, then coalescing (one introspection per digest, waiters released on
//     every path, a panic included), the breaker's state, the in-flight bound (a send that does not
//     wait, then a wait of at most 100 ms) and the stall check's counters and timer, the breaker's
//     context, the POST with a deadline and no redirect, the status, the media type, the 1 MiB cap,
//     exactly one JSON object with numbers kept as text, active, exp and nbf (clamped), the claim
//     check (on a string or any element of an array), the group checked for control characters,
//     the entry built with its pass window and stored with ring eviction under both bounds, and
//     published; denials with their challenge and no-store.
//
// What it leaves out is configuration the bench does not use (other token sources, templates,
// other client authentication, Redis, usernameClaim, nested claims, the rest of the claims
// language, negative and stale caching) and the detail of failures (retries, the breaker's
// half-open probe, the log). So the distance from least-miss to this plugin is the price of the
// features under Yaegi, and from this plugin to ours the price of writing them as small,
// configurable functions. BenchmarkTraefikPath and make bench (bench/run.sh) both run it.
package leastfull

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
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

// Config is the introspection endpoint, the static Authorization it sends and the bounds, with
// ours' defaults.
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

// CreateConfig returns ours' defaults; the URL and the Authorization must be set.
func CreateConfig() *Config {
	return &Config{TTLSeconds: 30, MaxEntries: 10000, MaxBytes: 32 << 20, MaxInFlight: 64}
}

const (
	visibleASCII = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"
	controlChars = "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\x0e\x0f" +
		"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"
	maxToken      = 4096
	maxHeader     = maxToken + 7 // "Bearer " and the token
	entryOverhead = 360
	timeout       = 5 * time.Second
	slotWait      = 100 * time.Millisecond
	stallEvery    = 250 * time.Millisecond
	slowAfter     = time.Second
	threshold     = 5
	openFor       = time.Second
	status200     = 200
	status401     = 401
	status403     = 403
	status503     = 503
	noExp         = int64(1<<63 - 1)
	noNbf         = -1 << 63
	invalidToken  = `Bearer realm="traefik", error="invalid_token"`
	scope         = `Bearer realm="traefik", error="insufficient_scope"`
)

type entry struct {
	group, expires      string
	exp, nbf            int64
	fresh               int64
	passFrom, passUntil int64 // the window in which a hit forwards: none unless allowed
	slot, size          int
	active, forbidden   bool
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

	// The guard: the in-flight slots, the stall check's counters, the breaker.
	slots                  chan struct{}
	slotsV, slotV          reflect.Value
	entered, ended         *atomic.Int64
	armed, troubled        *atomic.Bool
	parent                 *atomic.Value
	bmu                    *sync.Mutex
	seenEnded, seenEntered int64
	quietSince             time.Time
	failures               int
	openUntil              time.Time
	cut                    context.CancelFunc
}

// New creates the middleware.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	switch {
	case config.TTLSeconds < 1:
		return nil, errors.New("ttlSeconds must be at least 1")
	case config.MaxEntries < 1:
		return nil, errors.New("maxEntries must be at least 1")
	case config.MaxInFlight < 1:
		return nil, errors.New("maxInFlight must be at least 1")
	}
	base := http.Header{}
	base.Set("Content-Type", "application/x-www-form-urlencoded")
	base.Set("Accept", "application/json")
	base.Set("Authorization", config.Authorization)
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error { return http.ErrUseLastResponse },
	}
	slots := make(chan struct{}, config.MaxInFlight)
	p := &LeastFull{
		next: next, client: client, url: config.URL, base: base, ttl: int64(config.TTLSeconds),
		keep: config.ForwardAuthorization,
		mu:   &sync.RWMutex{}, entries: map[[32]byte]*entry{}, inflight: map[[32]byte]*pending{},
		max: config.MaxEntries, maxBytes: config.MaxBytes,
		slots: slots, slotsV: reflect.ValueOf(slots), slotV: reflect.ValueOf(struct{}{}),
		entered: &atomic.Int64{}, ended: &atomic.Int64{}, armed: &atomic.Bool{}, troubled: &atomic.Bool{},
		parent: &atomic.Value{}, bmu: &sync.Mutex{},
	}
	newParent(p)
	return p, nil
}

// ServeHTTP serves a hit, and hands a miss to miss. A header it cannot read at once (white space
// around the token, say) goes to slow.
func (p *LeastFull) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	vals := h["Authorization"]
	if len(vals) != 1 || len(vals[0]) <= 7 || len(vals[0]) > maxHeader || !strings.EqualFold(vals[0][:7], "Bearer ") {
		slow(p, rw, req)
		return
	}
	token := vals[0][7:]
	if strings.Trim(token, visibleASCII) != "" {
		slow(p, rw, req)
		return
	}
	key := sha256.Sum256([]byte(token))
	p.mu.RLock()
	e := p.entries[key]
	p.mu.RUnlock()
	now := time.Now().Unix()
	if e == nil || now >= e.passUntil || now < e.passFrom {
		if e == nil || now >= e.fresh {
			e, now = miss(p, req, token, key)
		}
		switch {
		case e == nil:
			deny(rw, status503, "")
			return
		case !e.active || now >= e.exp || now < e.nbf:
			deny(rw, status401, invalidToken)
			return
		case e.forbidden:
			deny(rw, status403, scope)
			return
		}
	}
	delete(h, "Expires_at") // the canonical key of a client's Expires_At
	if !p.keep {
		delete(h, "Authorization")
	}
	h["Group"] = []string{e.group}
	h["Expires-At"] = []string{e.expires}
	req.URL.User = nil
	p.next.ServeHTTP(rw, req)
}

// slow reads a header the hit path did not (RFC 7235 section 2.1: optional white space around it,
// one or more spaces after the scheme), and serves the request as ServeHTTP would. It is
// ServeHTTP's path written out once more, so that a hit pays for none of its frame slots: reading
// the token into a variable that both paths share costs every hit 5 allocations (130 to 135).
func slow(p *LeastFull, rw http.ResponseWriter, req *http.Request) {
	h := req.Header
	vals := h["Authorization"]
	if len(vals) != 1 {
		deny(rw, status401, `Bearer realm="traefik"`)
		return
	}
	v := strings.Trim(vals[0], " \t")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		deny(rw, status401, `Bearer realm="traefik"`)
		return
	}
	token := strings.TrimLeft(v[7:], " ")
	if token == "" || len(token) > maxToken || strings.Trim(token, visibleASCII) != "" {
		deny(rw, status401, invalidToken)
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
	switch {
	case e == nil:
		deny(rw, status503, "")
		return
	case !e.active || now >= e.exp || now < e.nbf:
		deny(rw, status401, invalidToken)
		return
	case e.forbidden:
		deny(rw, status403, scope)
		return
	}
	delete(h, "Expires_at") // the canonical key of a client's Expires_At
	if !p.keep {
		delete(h, "Authorization")
	}
	h["Group"] = []string{e.group}
	h["Expires-At"] = []string{e.expires}
	req.URL.User = nil
	p.next.ServeHTTP(rw, req)
}

// deny answers a request that may not pass (RFC 6750 section 3).
func deny(rw http.ResponseWriter, status int, challenge string) {
	if challenge != "" {
		rw.Header().Set("WWW-Authenticate", challenge)
	}
	rw.Header().Set("Cache-Control", "no-store")
	http.Error(rw, http.StatusText(status), status)
}

// miss introspects token, once per key at a time, and returns its entry (stored or not), or nil
// when no answer came.
func miss(p *LeastFull, req *http.Request, token string, key [32]byte) (e *entry, now int64) {
	p.mu.Lock()
	if w := p.inflight[key]; w != nil {
		p.mu.Unlock()
		return await(w, req)
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
			<-p.slots
		}
		p.mu.Lock()
		delete(p.inflight, key)
		p.mu.Unlock()
		close(w.done)
		e = nil
		now = 0
	}()

	// The guard: the breaker, an in-flight slot, the stall check.
	deadline := time.Now().Add(timeout)
	if p.troubled.Load() && !admit(p) {
		return nil, 0
	}
	if !p.slotsV.TrySend(p.slotV) && !waitSlot(p, deadline) {
		return nil, 0
	}
	holding = true
	p.entered.Add(1)
	if !p.armed.Load() {
		armStall(p)
	}

	// RFC 7662 section 2.1: the token form-encoded in a POST, in the breaker's context.
	ctx, cancel := context.WithDeadline(p.parent.Load().(context.Context), deadline)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, strings.NewReader("token="+url.QueryEscape(token)))
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
	<-p.slots
	if claims == nil || p.troubled.Load() {
		record(p, claims != nil)
	}
	if claims == nil {
		return nil, 0
	}

	// The verdict (RFC 7662 section 2.2): active first, then exp and nbf, the claim, the value.
	now = time.Now().Unix()
	e = &entry{exp: noExp, nbf: noNbf}
	e.active, _ = claims["active"].(bool)
	store := e.active
	if e.active {
		// exp written out, nbf in a function: answers carry an exp, rarely an nbf.
		if raw := claims["exp"]; raw != nil {
			n, isNumber := raw.(json.Number)
			f, err := n.Float64()
			if !isNumber || err != nil {
				return nil, 0
			}
			switch {
			case f >= 9.2e18:
				e.exp = noExp
			case f <= -9.2e18:
				e.exp = noNbf
			default:
				e.exp = int64(f)
			}
			e.expires = string(n)
			if digits := strings.TrimPrefix(e.expires, "-"); digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
				e.expires = strconv.FormatFloat(f, 'f', -1, 64)
			}
		}
		if raw := claims["nbf"]; raw != nil {
			var ok bool
			if e.nbf, ok = numericDate(raw); !ok {
				return nil, 0
			}
		}
		raw := claims["grp"]
		group, isString := raw.(string)
		match := isString && group == "admin"
		if !isString {
			group, match = arrayText(raw)
		}
		e.forbidden = !match
		e.group = group
		if match && strings.ContainsAny(group, controlChars) {
			return nil, 0
		}
		// The entry: fresh until the TTL or exp, passing from nbf while fresh if allowed.
		e.fresh = now + p.ttl
		if e.exp < e.fresh {
			e.fresh = e.exp
		}
		if match {
			e.passFrom, e.passUntil = e.nbf, e.fresh
		}
		e.size = entryOverhead + len(group) + len(e.expires)
		store = e.fresh > now && e.size <= p.maxBytes
	}

	// Published: stored with ring eviction under both bounds, or the old entry removed.
	w.e = e
	p.mu.Lock()
	delete(p.inflight, key)
	old := p.entries[key]
	if old != nil {
		p.bytes -= old.size
	}
	if !store {
		delete(p.entries, key)
	} else {
		if old != nil {
			e.slot = old.slot
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

// await waits for the introspection w that another request leads, until its own request ends.
func await(w *pending, req *http.Request) (*entry, int64) {
	cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.done)}, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(req.Context().Done())}}
	if chosen, _, _ := reflect.Select(cases); chosen != 0 {
		return nil, 0
	}
	return w.e, time.Now().Unix()
}

// numericDate reads a NumericDate claim (RFC 7519 section 2), clamped to the int64 range.
func numericDate(raw any) (int64, bool) {
	n, isNumber := raw.(json.Number)
	f, err := n.Float64()
	switch {
	case !isNumber || err != nil:
		return 0, false
	case f >= 9.2e18:
		return noExp, true
	case f <= -9.2e18:
		return noNbf, true
	}
	return int64(f), true
}

// arrayText renders a claim that is not a string as a header value (an array comma-joined) and
// says whether Equals(`grp`, `admin`) holds for it: on an array, for any element.
func arrayText(raw any) (string, bool) {
	list, ok := raw.([]any)
	if !ok {
		if raw == nil {
			return "", false
		}
		text, _ := json.Marshal(raw)
		return string(text), false
	}
	parts := make([]string, len(list))
	match := false
	for i, item := range list {
		if s, isString := item.(string); isString {
			parts[i] = s
			match = match || s == "admin"
			continue
		}
		text, _ := json.Marshal(item)
		parts[i] = string(text)
	}
	return strings.Join(parts, ","), match
}

// evict frees the oldest slot, and removes its entry if the entry still owns it.
func evict(p *LeastFull) {
	key := p.ring[p.head]
	if e := p.entries[key]; e != nil && e.slot == p.head {
		delete(p.entries, key)
		p.bytes -= e.size
	}
	p.head = (p.head + 1) % p.max
	p.used--
}

// waitSlot waits for an in-flight slot, at most slotWait and never past deadline.
func waitSlot(p *LeastFull, deadline time.Time) bool {
	wait := time.Until(deadline)
	if slotWait < wait {
		wait = slotWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	chosen, _, _ := reflect.Select([]reflect.SelectCase{{Dir: reflect.SelectSend, Chan: p.slotsV, Send: p.slotV}, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)}})
	return chosen == 0
}

// newParent stores a new context for calls to the IdP; the breaker ends it when it opens.
func newParent(p *LeastFull) {
	ctx, cancel := context.WithCancel(context.Background())
	p.parent.Store(ctx)
	p.cut = cancel
}

// admit says whether a call may go while the breaker has counted failures: not while it is open.
func admit(p *LeastFull) bool {
	p.bmu.Lock()
	defer p.bmu.Unlock()
	return !time.Now().Before(p.openUntil)
}

// record counts the end of a call for the breaker: threshold failures in a row open it for
// openFor and end the calls in flight; an answer closes it.
func record(p *LeastFull, answered bool) {
	p.bmu.Lock()
	defer p.bmu.Unlock()
	if answered {
		p.failures = 0
		p.troubled.Store(false)
		return
	}
	p.failures++
	p.troubled.Store(true)
	if p.failures >= threshold {
		p.failures = 0
		p.openUntil = time.Now().Add(openFor)
		p.cut()
		newParent(p)
	}
}

// armStall schedules a stall check, unless one is scheduled.
func armStall(p *LeastFull) {
	if !p.armed.CompareAndSwap(false, true) {
		return
	}
	p.bmu.Lock()
	p.seenEnded = p.ended.Load()
	p.seenEntered = p.entered.Load()
	p.quietSince = time.Now()
	p.bmu.Unlock()
	time.AfterFunc(stallEvery, func() { checkStall(p) })
}

// checkStall opens the breaker when threshold calls that were in flight at the last look are
// still in flight and none has ended for slowAfter; it looks again while calls are in flight.
func checkStall(p *LeastFull) {
	p.bmu.Lock()
	now := time.Now()
	ended := p.ended.Load()
	if ended != p.seenEnded {
		p.seenEnded = ended
		p.quietSince = now
	}
	waiting := p.seenEntered - ended
	p.seenEntered = p.entered.Load()
	if waiting >= threshold && now.Sub(p.quietSince) >= slowAfter {
		p.openUntil = now.Add(openFor)
		p.troubled.Store(true)
		p.cut()
		newParent(p)
	}
	p.bmu.Unlock()
	if len(p.slots) > 0 {
		time.AfterFunc(stallEvery, func() { checkStall(p) })
		return
	}
	p.armed.Store(false)
	if len(p.slots) > 0 {
		armStall(p)
	}
}
