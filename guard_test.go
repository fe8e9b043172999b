package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// The IdP guard (guard.go): the circuit breaker's state machine with its timings, the bound on
// introspections in flight under concurrency, Retry-After, and how both play with coalescing,
// staleIfErrorSeconds, negative caching and reloads. Every middleware test runs on a cacheRig:
// two routers' handlers and a reload's, taking turns.

import (
	"context"
	"io"
	"log"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer collects log lines written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testGuard is a guard with the breaker's timings shortened, and its ERROR lines collected.
func testGuard(threshold int, openFor time.Duration) (*idpGuard, *lockedBuffer) {
	out := &lockedBuffer{}
	l := newLogger("guard@test")
	l.errs = log.New(out, "", 0)
	g := newGuard(clientSettings{maxInFlight: 2, inFlightWait: 10 * time.Millisecond, breakerFailures: threshold, breakerOpen: openFor, timeout: time.Second}, l)
	return g, out
}

func expectAdmitted(t *testing.T, g *idpGuard, at time.Time, wantProbe bool) {
	t.Helper()
	probe, refusedFor := admitCall(g, at)
	if refusedFor != 0 || probe != wantProbe {
		t.Fatalf("admitCall = (probe %v, refused for %v), want admitted with probe %v", probe, refusedFor, wantProbe)
	}
}

func expectRefused(t *testing.T, g *idpGuard, at time.Time) time.Duration {
	t.Helper()
	probe, refusedFor := admitCall(g, at)
	if refusedFor <= 0 || probe {
		t.Fatalf("admitCall = (probe %v, refused for %v), want refused", probe, refusedFor)
	}
	return refusedFor
}

func TestBreakerStateMachine(t *testing.T) {
	const openFor = 200 * time.Millisecond
	g, out := testGuard(3, openFor)
	now := time.Now()

	// Closed: failures below the threshold, then an answer, reset the count.
	for i := 0; i < 2; i++ {
		expectAdmitted(t, g, now, false)
		callEnded(g, false, callFailed, "endpoint answered 503")
	}
	expectAdmitted(t, g, now, false)
	callEnded(g, false, callAnswered, "")
	if g.troubled.Load() {
		t.Fatal("an answer left the breaker troubled")
	}
	// A call that was never made counts for nothing.
	callEnded(g, false, callSkipped, "")
	for i := 0; i < 2; i++ {
		callEnded(g, false, callFailed, "endpoint answered 503")
	}
	expectAdmitted(t, g, now, false)
	if out.String() != "" {
		t.Fatalf("logged before the breaker opened:\n%s", out.String())
	}
	if !closedBreaker(g) {
		t.Fatal("closedBreaker is false with failures below the threshold: retries would stop")
	}

	// The third consecutive failure opens it: calls are refused until openFor has passed.
	callEnded(g, false, callFailed, "request failed: connection refused")
	opened := time.Now()
	if refused := expectRefused(t, g, opened); refused > openFor || refused < openFor-50*time.Millisecond {
		t.Errorf("refused for %v right after opening, want about %v", refused, openFor)
	}
	expectRefused(t, g, opened.Add(openFor/2))
	// A late failure of a call admitted before it opened changes nothing.
	callEnded(g, false, callFailed, "request failed: timed out")
	// A late answer of such a call does not close it either: only the probe does.
	callEnded(g, false, callAnswered, "")
	expectRefused(t, g, opened.Add(openFor/2))

	if callParent(g).Err() == nil {
		t.Fatal("opening did not cut off the calls in flight")
	}
	if closedBreaker(g) {
		t.Fatal("closedBreaker is true while the breaker is open: calls in flight would go on retrying")
	}
	// After openFor, one probe; the others are refused while it is out.
	probeAt := opened.Add(openFor + 10*time.Millisecond)
	expectAdmitted(t, g, probeAt, true)
	if callParent(g).Err() != nil {
		t.Fatal("the probe would be cut off by the cut of the calls before it")
	}
	// probeFor (timeout + 1s) is longer than openFor: a refusal says to come back after openFor,
	// and near the probe's end, after what is left of probeFor.
	if refused := expectRefused(t, g, probeAt); refused != openFor {
		t.Errorf("refused for %v with the probe just out, want openFor %v", refused, openFor)
	}
	if refused := expectRefused(t, g, probeAt.Add(g.probeFor-50*time.Millisecond)); refused != 50*time.Millisecond {
		t.Errorf("refused for %v with the probe nearly lost, want the 50ms left", refused)
	}
	// The probe fails: open for another openFor, with no second "opened" line.
	callEnded(g, true, callFailed, "request failed: connection refused")
	reopened := time.Now()
	if refused := expectRefused(t, g, reopened); refused > openFor || refused < openFor-50*time.Millisecond {
		t.Errorf("refused for %v right after the probe failed, want about %v", refused, openFor)
	}
	expectRefused(t, g, reopened.Add(openFor/2))
	// The next probe is skipped (no in-flight slot): the one after it is the probe.
	expectAdmitted(t, g, reopened.Add(openFor+10*time.Millisecond), true)
	callEnded(g, true, callSkipped, "")
	expectAdmitted(t, g, reopened.Add(openFor+20*time.Millisecond), true)
	// That probe is lost (its request panicked): after probeFor another one may go.
	lost := reopened.Add(openFor + 20*time.Millisecond)
	expectRefused(t, g, lost.Add(g.probeFor/2))
	expectAdmitted(t, g, lost.Add(g.probeFor+time.Millisecond), true)
	// It succeeds: closed, calls go through without a lock again.
	callEnded(g, true, callAnswered, "")
	expectAdmitted(t, g, time.Now(), false)
	if g.troubled.Load() || !closedBreaker(g) {
		t.Fatal("the breaker closed but stays troubled")
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line when it opened and one when it closed, got:\n%s", out.String())
	}
	expectEqual(t, "opened line", lines[0], "oAuthIntrospection[guard@test]: IdP circuit breaker opened after 3 consecutive failed introspections (last: request failed: connection refused): misses get 503 without calling the IdP, one probe every 200ms")
	if !strings.HasPrefix(lines[1], "oAuthIntrospection[guard@test]: IdP circuit breaker closed: the IdP answered again after ") ||
		!strings.Contains(lines[1], "; 8 misses were refused while it was open (last failure: request failed: connection refused)") {
		t.Errorf("closed line = %q", lines[1])
	}
}

func TestBreakerDisabledNeverRefuses(t *testing.T) {
	g, out := testGuard(0, time.Second)
	for i := 0; i < 100; i++ {
		callEnded(g, false, callFailed, "endpoint answered 503")
		expectAdmitted(t, g, time.Now(), false)
	}
	if out.String() != "" {
		t.Fatalf("a disabled breaker logged:\n%s", out.String())
	}
}

func TestUnavailableRetryAfter(t *testing.T) {
	for _, test := range []struct {
		after time.Duration
		want  string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {time.Second + time.Millisecond, "2"}, {90 * time.Second, "90"}} {
		v := unavailable(test.after, "r")
		if v.status != http.StatusServiceUnavailable || len(v.retryAfter) != 1 || v.retryAfter[0] != test.want {
			t.Errorf("unavailable(%v) = %d %q, want 503 %q", test.after, v.status, v.retryAfter, test.want)
		}
	}
}

// switchableIDP answers 503 while down is set, and every token active otherwise; a token that
// starts with "bogus" is inactive.
func switchableIDP(down *atomic.Bool) func(w http.ResponseWriter, r *http.Request, call int) {
	return func(w http.ResponseWriter, r *http.Request, call int) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.PostForm.Get("token"), "bogus") {
			_, _ = io.WriteString(w, `{"active":false}`)
			return
		}
		_, _ = io.WriteString(w, `{"active":true,"grp":"admin","exp":`+futureExp()+`}`)
	}
}

// expireFresh moves the cache entry of token past its TTL, as if ttlSeconds had passed, leaving
// its staleIfErrorSeconds window as it is.
func expireFresh(c *verdictCache, token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[tokenKey(token, nil, nil)]; e != nil {
		e.freshUntil = time.Now().Unix() - 1
		e.passUntil = 0
	}
}

// guardRig is a cacheRig with the breaker's ERROR lines collected.
func guardRig(t *testing.T, name string, answer func(w http.ResponseWriter, r *http.Request, call int), tune func(*Config)) (*cacheRig, *lockedBuffer) {
	t.Helper()
	rig := newCacheRig(t, name, answer, tune)
	out := &lockedBuffer{}
	rig.m.idp.guard.log.errs = log.New(out, "", 0)
	return rig, out
}

func expectRetryAfter(t *testing.T, rec interface{ Result() *http.Response }, want string) {
	t.Helper()
	resp := rec.Result()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", resp.StatusCode)
	}
	expectEqual(t, "Retry-After", resp.Header.Get("Retry-After"), want)
}

func TestBreakerThroughTheMiddleware(t *testing.T) {
	var down atomic.Bool
	rig, out := guardRig(t, "breaker@test", switchableIDP(&down), func(c *Config) {
		c.ClientConfig.MaxRetries = 0
		c.ClientConfig.CircuitBreaker.ConsecutiveFailures = 3
		c.Cache.StaleIfErrorSeconds = 60
		c.Cache.NegativeTTLSeconds = 60
	})
	baseline := runtime.NumGoroutine()
	// Before the outage: a token cached as active, one cached as inactive, and one whose entry is
	// past its TTL but within staleIfErrorSeconds.
	expectStatus(t, rig.do("hot"), http.StatusOK)
	expectStatus(t, rig.do("bogus-known"), http.StatusUnauthorized)
	expectStatus(t, rig.do("stale"), http.StatusOK)
	expireFresh(rig.m.cache, "stale")
	calls := rig.calls()

	down.Store(true)
	for i := 0; i < 3; i++ {
		rec := rig.do("new-" + strconv.Itoa(i))
		expectStatus(t, rec, http.StatusServiceUnavailable)
		expectEqual(t, "Retry-After of an IdP failure", rec.Header().Get("Retry-After"), "")
	}
	if got := rig.calls() - calls; got != 3 {
		t.Fatalf("the IdP got %d calls for 3 misses without retries, want 3", got)
	}
	// Open: a miss is refused at once, on every handler, without a call.
	for i := 0; i < 6; i++ {
		start := time.Now()
		rec := rig.do("refused-" + strconv.Itoa(i))
		expectRetryAfter(t, rec, "1")
		if took := time.Since(start); took > 500*time.Millisecond {
			t.Errorf("a refusal took %v", took)
		}
	}
	if got := rig.calls() - calls; got != 3 {
		t.Fatalf("the IdP got %d calls, want 3: the open breaker let calls through", got)
	}
	// Cached answers still serve, both ways, and a stale one stands in for the refused call.
	expectStatus(t, rig.do("hot"), http.StatusOK)
	expectStatus(t, rig.do("bogus-known"), http.StatusUnauthorized)
	expectStatus(t, rig.do("stale"), http.StatusOK)
	expireFresh(rig.m.cache, "stale")
	expectStatus(t, rig.do("stale"), http.StatusOK)
	if got := rig.calls() - calls; got != 3 {
		t.Fatalf("the IdP got %d calls, want 3: a cached answer called the IdP through the open breaker", got)
	}
	// A reload with the same configuration finds the breaker open; one with another configuration
	// starts with a closed breaker of its own, and calls the IdP.
	reloaded, err := New(context.Background(), rig.up, rig.config(), "breaker@test")
	if err != nil {
		t.Fatal(err)
	}
	expectRetryAfter(t, send(reloaded, bearerRequest("refused-after-reload")), "1")
	if got := rig.calls() - calls; got != 3 {
		t.Fatalf("the IdP got %d calls, want 3: the reload's handler has a breaker of its own", got)
	}
	changed := rig.config()
	changed.Claims = "Equals(`grp`, `admin`)"
	other, err := New(context.Background(), rig.up, changed, "breaker-changed@test")
	if err != nil {
		t.Fatal(err)
	}
	rec := send(other, bearerRequest("changed-config"))
	expectStatus(t, rec, http.StatusServiceUnavailable)
	expectEqual(t, "Retry-After under a new configuration's breaker", rec.Header().Get("Retry-After"), "")
	if got := rig.calls() - calls; got != 4 {
		t.Fatalf("the IdP got %d calls, want 4: a new configuration should start with a closed breaker", got)
	}
	other.(*middleware).idp.client.CloseIdleConnections()
	if !strings.Contains(out.String(), "IdP circuit breaker opened after 3 consecutive failed introspections (last: endpoint answered 503)") {
		t.Fatalf("no opened line:\n%s", out.String())
	}

	// The IdP comes back: within openSeconds a miss is the probe, and the breaker closes.
	down.Store(false)
	waitFor(t, 5*time.Second, "the breaker to let a probe through and close", func() bool {
		return rig.do("after").Code == http.StatusOK
	})
	for i := 0; i < 3; i++ {
		expectStatus(t, rig.do("later-"+strconv.Itoa(i)), http.StatusOK)
	}
	if !strings.Contains(out.String(), "IdP circuit breaker closed: the IdP answered again after ") {
		t.Fatalf("no closed line:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
	expectGoroutinesBackTo(t, baseline)
}

// heldIDP answers every token active, but only once release is closed; it counts the calls
// in flight and the most it saw at once.
type heldIDP struct {
	release chan struct{}
	now     atomic.Int32
	most    atomic.Int32
}

func (h *heldIDP) answer(w http.ResponseWriter, r *http.Request, call int) {
	n := h.now.Add(1)
	for {
		m := h.most.Load()
		if n <= m || h.most.CompareAndSwap(m, n) {
			break
		}
	}
	<-h.release
	h.now.Add(-1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"active":true,"grp":"admin"}`)
}

func TestInFlightBound(t *testing.T) {
	held := &heldIDP{release: make(chan struct{})}
	rig, _ := guardRig(t, "inflight@test", held.answer, func(c *Config) {
		c.ClientConfig.MaxInFlight = 3
		c.ClientConfig.InFlightWaitMilliseconds = 50
	})
	baseline := runtime.NumGoroutine()
	// Warm every path once before going concurrent (the interpreter builds some types lazily).
	close(held.release)
	expectStatus(t, rig.do("warm"), http.StatusOK)
	held.release = make(chan struct{})

	// Three new tokens take the three slots, and a waiter joins the first one's introspection.
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := 0; i < 4; i++ {
		i := i
		token := "held-" + strconv.Itoa(i)
		if i == 3 {
			token = "held-0"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = rig.do(token).Code
		}()
		if i < 3 {
			waitFor(t, 5*time.Second, "the IdP to hold "+strconv.Itoa(i+1)+" calls", func() bool { return held.now.Load() == int32(i+1) })
		}
	}
	waitFor(t, 5*time.Second, "a waiter on held-0's introspection", func() bool {
		rig.m.cache.mu.RLock()
		p := rig.m.cache.inflight[tokenKey("held-0", nil, nil)]
		rig.m.cache.mu.RUnlock()
		return p != nil && p.waiters.Load() == 1
	})
	// A fourth token finds no slot: 503 with Retry-After after the bounded wait, no IdP call.
	start := time.Now()
	rec := rig.do("held-3")
	took := time.Since(start)
	expectRetryAfter(t, rec, "1")
	if took < 50*time.Millisecond || took > time.Second {
		t.Errorf("the refusal took %v, want the 50 ms wait and not much more", took)
	}
	// The bound is no failure of the IdP: the breaker is untouched.
	if rig.m.idp.guard.troubled.Load() {
		t.Error("a refusal for want of a slot counted against the IdP")
	}
	close(held.release)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("request %d: status %d, want 200", i, code)
		}
	}
	if got := held.most.Load(); got != 3 {
		t.Errorf("the IdP saw %d calls at once, want the bound, 3", got)
	}
	// The slots are free again.
	for i := 0; i < 5; i++ {
		expectStatus(t, rig.do("after-"+strconv.Itoa(i)), http.StatusOK)
	}
	if got := len(rig.m.idp.guard.slots); got != 0 {
		t.Errorf("%d slots still taken", got)
	}
	rig.m.idp.client.CloseIdleConnections()
	expectGoroutinesBackTo(t, baseline)
}

// TestInFlightBoundFlood sends a flood of distinct tokens at once: the IdP never sees more
// calls in flight than the bound, every request is answered 200 or 503 with Retry-After, and
// nothing waits longer than the IdP's own delay plus the bounded wait.
func TestInFlightBoundFlood(t *testing.T) {
	var now, most atomic.Int32
	slow := func(w http.ResponseWriter, r *http.Request, call int) {
		n := now.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // the IdP's service time: not a wait for a condition
		now.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"grp":"admin"}`)
	}
	rig, _ := guardRig(t, "flood@test", slow, func(c *Config) {
		c.ClientConfig.MaxInFlight = 4
		c.ClientConfig.InFlightWaitMilliseconds = 30
	})
	expectStatus(t, rig.do("warm"), http.StatusOK)
	var wg sync.WaitGroup
	var ok, refused, other atomic.Int32
	for i := 0; i < 64; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := rig.do("flood-" + strconv.Itoa(i))
			switch {
			case rec.Code == http.StatusOK:
				ok.Add(1)
			case rec.Code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "1":
				refused.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := most.Load(); got > 4 || got < 1 {
		t.Errorf("the IdP saw %d calls at once, want at most the bound, 4", got)
	}
	if other.Load() != 0 || ok.Load() == 0 || refused.Load() == 0 {
		t.Errorf("answers: %d 200, %d 503 with Retry-After, %d other; want both kinds and no other", ok.Load(), refused.Load(), other.Load())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestBreakerSlowCallsOpenAndCutOff: an IdP that takes connections but never answers (a frozen
// process) opens the breaker once consecutiveFailures calls have been in flight unanswered for
// slowCallMilliseconds, not after timeoutSeconds, and the calls in flight then end at once, for
// their leaders and their waiters alike.
func TestBreakerSlowCallsOpenAndCutOff(t *testing.T) {
	frozen := make(chan struct{})
	var inFlight atomic.Int32
	rig, out := guardRig(t, "slow@test", func(w http.ResponseWriter, r *http.Request, call int) {
		inFlight.Add(1)
		<-frozen
	}, func(c *Config) {
		c.ClientConfig.MaxRetries = 2
		c.ClientConfig.CircuitBreaker.ConsecutiveFailures = 2
		c.ClientConfig.CircuitBreaker.SlowCallMilliseconds = 100
	})
	t.Cleanup(func() { close(frozen) }) // runs before the IdP's Close, which waits for handlers
	var wg sync.WaitGroup
	type result struct {
		code int
		took time.Duration
	}
	results := make([]result, 3)
	start := time.Now()
	for i := 0; i < 3; i++ {
		i := i
		token := "frozen-" + strconv.Itoa(i%2) // the third request waits on the first's call
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := rig.do(token)
			results[i] = result{rec.Code, time.Since(start)}
		}()
		if i < 2 {
			waitFor(t, 5*time.Second, "the IdP to hold the call", func() bool { return inFlight.Load() == int32(i+1) })
		}
	}
	wg.Wait()
	for i, r := range results {
		if r.code != http.StatusServiceUnavailable {
			t.Errorf("request %d: status %d, want 503", i, r.code)
		}
		// timeoutSeconds is 5: ending within a second means the breaker cut the call off.
		if r.took > time.Second {
			t.Errorf("request %d took %v: the opening breaker did not cut its call off", i, r.took)
		}
	}
	if got := inFlight.Load(); got != 2 {
		t.Errorf("the IdP got %d calls, want 2: no retry after the cut", got)
	}

	expectRetryAfter(t, rig.do("frozen-after"), "1")
	// After openSeconds, the probe: the frozen IdP must answer it within slowCallMilliseconds,
	// not timeoutSeconds, and the breaker opens again.
	var probeTook time.Duration
	waitFor(t, 5*time.Second, "the probe", func() bool {
		begin := time.Now()
		rec := rig.do("frozen-probe")
		probeTook = time.Since(begin)
		return rec.Code == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == ""
	})
	if probeTook > time.Second {
		t.Errorf("the probe held its request %v: want about slowCallMilliseconds (100 ms)", probeTook)
	}
	expectRetryAfter(t, rig.do("frozen-after-probe"), "1")
	if !strings.Contains(out.String(), "IdP circuit breaker opened after 2 introspections in flight, none answered for 1") {
		t.Errorf("no opened line naming the slow calls:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestStallCheckCountsOnlyOldCalls: one call stuck for longer than slowCallMilliseconds, joined
// by fresh calls a moment before the check looks, is no stall: the fresh calls are answered
// within a quarter of slowCallMilliseconds, before they count.
func TestStallCheckCountsOnlyOldCalls(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Bool
	rig, out := guardRig(t, "stallold@test", func(w http.ResponseWriter, r *http.Request, call int) {
		if strings.Contains(r.PostForm.Get("token"), "stuck") {
			held.Store(true)
			firstReady(release, r.Context().Done())
		} else {
			time.Sleep(60 * time.Millisecond) // the IdP's service time: not a wait for a condition
		}
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, func(c *Config) {
		c.ClientConfig.CircuitBreaker.ConsecutiveFailures = 3
		c.ClientConfig.CircuitBreaker.SlowCallMilliseconds = 400
	})
	stuck := make(chan int, 1)
	start := time.Now()
	go func() { stuck <- rig.do("stuck").Code }()
	waitFor(t, 5*time.Second, "the IdP to hold the stuck call", held.Load)
	// Let the stuck call age to most of slowCallMilliseconds, then send two fresh ones: three in
	// flight, consecutiveFailures of them, with nothing answered for slowCallMilliseconds, when
	// the check looks at about 400 ms; at its next look, 100 ms later, they are answered.
	waitFor(t, 5*time.Second, "370 ms to pass", func() bool { return time.Since(start) > 370*time.Millisecond })
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = rig.do("fresh-" + strconv.Itoa(i)).Code
		}()
	}
	wg.Wait()
	close(release)
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("fresh call %d: status %d, want 200: a fresh call was judged stalled", i, code)
		}
	}
	if code := <-stuck; code != http.StatusOK {
		t.Errorf("the stuck call: status %d, want 200 once the IdP answered it", code)
	}
	if out.String() != "" || rig.m.idp.guard.troubled.Load() {
		t.Errorf("the breaker opened on one stuck call:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestStallCheckSkipsRetryPauses: calls that wait out an IdP's Retry-After between attempts
// are waiting on no IdP: however long the pause, they are no stall, and their retries are
// answered.
func TestStallCheckSkipsRetryPauses(t *testing.T) {
	var shed atomic.Int32
	rig, out := guardRig(t, "pauses@test", func(w http.ResponseWriter, r *http.Request, call int) {
		if shed.Add(1) <= 5 { // the first attempt of each of the five introspections
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, nil) // the defaults: consecutiveFailures 5, slowCallMilliseconds 1000, maxRetries 3
	var wg sync.WaitGroup
	codes := make([]int, 5)
	for i := range codes {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = rig.do("shed-" + strconv.Itoa(i)).Code
		}()
	}
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("introspection %d: status %d, want 200 after its retry", i, code)
		}
	}
	if out.String() != "" {
		t.Errorf("the breaker opened on calls pausing between attempts:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestStallCheckOffWithBreakerDisabled: with circuitBreaker.disabled, a call slower than
// slowCallMilliseconds is waited for; it never opens the breaker or cuts calls off.
func TestStallCheckOffWithBreakerDisabled(t *testing.T) {
	release := make(chan struct{})
	var held atomic.Bool
	rig, out := guardRig(t, "stalloff@test", func(w http.ResponseWriter, r *http.Request, call int) {
		if strings.Contains(r.PostForm.Get("token"), "slow") {
			held.Store(true)
			firstReady(release, r.Context().Done())
		}
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, func(c *Config) {
		c.ClientConfig.CircuitBreaker.Disabled = true
		c.ClientConfig.CircuitBreaker.SlowCallMilliseconds = 20
	})
	slow := make(chan int, 1)
	start := time.Now()
	go func() { slow <- rig.do("slow").Code }()
	waitFor(t, 5*time.Second, "the IdP to hold the call", held.Load)
	waitFor(t, 5*time.Second, "10 slowCallMilliseconds to pass", func() bool { return time.Since(start) > 200*time.Millisecond })
	close(release)
	if code := <-slow; code != http.StatusOK {
		t.Errorf("the slow call: status %d, want 200", code)
	}
	for i := 0; i < 3; i++ {
		expectStatus(t, rig.do("after-"+strconv.Itoa(i)), http.StatusOK)
	}
	if out.String() != "" {
		t.Errorf("a disabled breaker logged:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestBreakerSlowAnswersStillCount: an IdP slower than slowCallMilliseconds that does answer,
// one call at a time, is no stall: fewer than consecutiveFailures calls are ever in flight.
func TestBreakerSlowAnswersStillCount(t *testing.T) {
	rig, out := guardRig(t, "slowok@test", func(w http.ResponseWriter, r *http.Request, call int) {
		time.Sleep(60 * time.Millisecond) // the IdP's service time: not a wait for a condition
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, func(c *Config) {
		c.ClientConfig.CircuitBreaker.ConsecutiveFailures = 2
		c.ClientConfig.CircuitBreaker.SlowCallMilliseconds = 20
	})
	for i := 0; i < 6; i++ {
		expectStatus(t, rig.do("slow-"+strconv.Itoa(i)), http.StatusOK)
	}
	if out.String() != "" || rig.m.idp.guard.troubled.Load() {
		t.Errorf("slow answers left the breaker troubled or logged:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestBreakerCountsNonAnswers: a 200 that is no introspection answer (a maintenance page, or a
// body that stalls until the deadline) is a failed introspection, not an answer that resets the
// count.
func TestBreakerCountsNonAnswers(t *testing.T) {
	for _, test := range []struct {
		desc   string
		answer func(w http.ResponseWriter, r *http.Request, call int)
	}{
		{"a 200 HTML page", answerWithType("text/html", "<html>maintenance</html>")},
		{"a 200 whose body stalls", func(w http.ResponseWriter, r *http.Request, call int) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"active":`)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	} {
		t.Run(test.desc, func(t *testing.T) {
			rig, out := guardRig(t, "nonanswer-"+test.desc+"@test", test.answer, func(c *Config) {
				c.ClientConfig.TimeoutSeconds = 1
				c.ClientConfig.MaxRetries = 0
				c.ClientConfig.CircuitBreaker.ConsecutiveFailures = 2
				c.ClientConfig.CircuitBreaker.SlowCallMilliseconds = 300000 // only the answers count here
			})
			for i := 0; i < 2; i++ {
				expectStatus(t, rig.do("t-"+strconv.Itoa(i)), http.StatusServiceUnavailable)
			}
			expectRetryAfter(t, rig.do("t-2"), "1")
			if got := rig.calls(); got != 2 {
				t.Errorf("the IdP got %d calls, want 2", got)
			}
			if !strings.Contains(out.String(), "IdP circuit breaker opened after 2 consecutive failed introspections") {
				t.Errorf("no opened line:\n%s", out.String())
			}
			rig.m.idp.client.CloseIdleConnections()
		})
	}
}

// TestSlotWaitWithinTimeout: the wait for an in-flight slot is part of timeoutSeconds, so no
// request waits longer than timeoutSeconds however long inFlightWaitMilliseconds is.
func TestSlotWaitWithinTimeout(t *testing.T) {
	frozen := make(chan struct{})
	rig, _ := guardRig(t, "slotwait@test", func(w http.ResponseWriter, r *http.Request, call int) {
		firstReady(frozen, r.Context().Done())
	}, func(c *Config) {
		c.ClientConfig.TimeoutSeconds = 1
		c.ClientConfig.MaxRetries = 0
		c.ClientConfig.MaxInFlight = 1
		c.ClientConfig.InFlightWaitMilliseconds = 10000
		c.ClientConfig.CircuitBreaker.Disabled = true
	})
	t.Cleanup(func() { close(frozen) })
	var wg sync.WaitGroup
	took := make([]time.Duration, 3)
	for i := 0; i < 3; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			expectStatus(t, rig.do("wait-"+strconv.Itoa(i)), http.StatusServiceUnavailable)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, d := range took {
		if d > time.Second+faultMargin {
			t.Errorf("request %d took %v, more than timeoutSeconds 1 and the margin", i, d)
		}
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestBreakerCountsIntrospectionsNotAttempts: retries do not multiply a failure. An IdP that
// fails on some tokens (a 500 for "poison" ones, with maxRetries 3 four calls each) needs
// consecutiveFailures of them in a row, not two, to open the breaker.
func TestBreakerCountsIntrospectionsNotAttempts(t *testing.T) {
	rig, out := guardRig(t, "poison@test", func(w http.ResponseWriter, r *http.Request, call int) {
		if strings.HasPrefix(r.PostForm.Get("token"), "poison") {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, call)
	}, func(c *Config) { c.ClientConfig.MaxRetries = 3 })
	for i := 0; i < 4; i++ {
		expectStatus(t, rig.do("poison-"+strconv.Itoa(i)), http.StatusServiceUnavailable)
	}
	if got := rig.calls(); got != 16 {
		t.Errorf("the IdP got %d calls for 4 poison tokens, want 16 (each tried 4 times)", got)
	}
	expectStatus(t, rig.do("legit"), http.StatusOK)
	for i := 0; i < 5; i++ {
		expectStatus(t, rig.do("poison-again-"+strconv.Itoa(i)), http.StatusServiceUnavailable)
	}
	expectRetryAfter(t, rig.do("legit-after"), "1")
	if !strings.Contains(out.String(), "opened after 5 consecutive failed introspections (last: endpoint answered 500)") {
		t.Errorf("no opened line:\n%s", out.String())
	}
	rig.m.idp.client.CloseIdleConnections()
}

// TestGuardTimings: the stall check looks every quarter of slowAfter, never more often than every
// 10ms; the probe's deadline is slowAfter away, unless the request's comes first or the stall
// check is off. (The retry times of refusals are checked in TestBreakerStateMachine.)
func TestGuardTimings(t *testing.T) {
	g, _ := testGuard(3, 200*time.Millisecond)
	for _, test := range []struct{ slowAfter, want time.Duration }{
		{time.Second, 250 * time.Millisecond}, {44 * time.Millisecond, 11 * time.Millisecond},
		{40 * time.Millisecond, 10 * time.Millisecond}, {8 * time.Millisecond, 10 * time.Millisecond},
	} {
		g.slowAfter = test.slowAfter
		if got := stallCheckEvery(g); got != test.want {
			t.Errorf("stallCheckEvery with slowAfter %v = %v, want %v", test.slowAfter, got, test.want)
		}
	}

	far := time.Now().Add(time.Hour)
	g.slowAfter = 0
	if got := probeDeadline(g, far); !got.Equal(far) {
		t.Errorf("probe deadline with the stall check off = %v from now, want the request's", time.Until(got))
	}
	g.slowAfter = 300 * time.Millisecond
	before := time.Now()
	got := probeDeadline(g, far)
	if got.Before(before.Add(g.slowAfter)) || got.After(time.Now().Add(g.slowAfter)) {
		t.Errorf("probe deadline = %v from now, want slowAfter %v", got.Sub(before), g.slowAfter)
	}
	near := time.Now().Add(50 * time.Millisecond)
	if got := probeDeadline(g, near); !got.Equal(near) {
		t.Errorf("probe deadline = %v from now, want the nearer request's", time.Until(got))
	}

}

// panickingWriter panics on every write, and records that one was tried. Its parameter is named:
// under Yaegi an unnamed one panics before the body runs (docs/development.md).
type panickingWriter struct{ tried atomic.Bool }

func (p *panickingWriter) Write(b []byte) (int, error) {
	p.tried.Store(true)
	panic("log output failed")
}

// stallGuard is a testGuard whose stall check is on, with a slowAfter so long that the checks it
// schedules never run while the tests do: a test calls checkStall itself.
func stallGuard() *idpGuard {
	g, _ := testGuard(3, time.Second)
	g.slowAfter = 24 * time.Hour
	g.wait = time.Minute
	return g
}

// TestStallCheckRearms: the stall check looks again while a call holds a slot, and stands down
// when none does, so that the next call arms it; a check that panics (here in its ERROR line)
// does the same, rather than leave a call in flight unwatched or keep looking at nothing.
func TestStallCheckRearms(t *testing.T) {
	for _, test := range []struct {
		desc     string
		inFlight bool
		panics   bool
	}{
		{"nothing in flight", false, false}, {"a call in flight", true, false},
		{"a panic with nothing in flight", false, true}, {"a panic with a call in flight", true, true},
	} {
		t.Run(test.desc, func(t *testing.T) {
			g := stallGuard()
			if test.inFlight {
				g.slots <- struct{}{}
			}
			armStall(g)
			w := &panickingWriter{}
			if test.panics {
				// Two calls waiting since the last look, nothing answered for twice slowAfter:
				// a stall, whose ERROR line panics.
				g.seenEntered = 2
				g.quietSince = time.Now().Add(-2 * g.slowAfter)
				g.log.errs = log.New(w, "", 0)
			}
			checkStall(g)
			if test.panics && (g.state != breakerOpen || !w.tried.Load()) {
				t.Fatalf("the stall did not open the breaker and log: state %d, logged %v", g.state, w.tried.Load())
			}
			if got := g.armed.Load(); got != test.inFlight {
				t.Errorf("after the check, armed = %v, want %v", got, test.inFlight)
			}
		})
	}
}

// TestSlotCountsFollowTheStallCheck: a call counts its entry and its end for the stall check when
// the check is on, whichever way it took its slot, and counts nothing when the check is off.
func TestSlotCountsFollowTheStallCheck(t *testing.T) {
	for _, slowAfter := range []time.Duration{0, 24 * time.Hour} {
		g := stallGuard()
		g.slowAfter = slowAfter
		want := int64(0)
		if slowAfter > 0 {
			want = 2
		}
		deadline := time.Now().Add(time.Minute)
		if refused, _ := enterIdP(g, deadline); refused != nil {
			t.Fatalf("slowAfter %v: enterIdP refused with a slot free: %s", slowAfter, refused.reason)
		}
		if refused, _ := waitSlot(g, deadline, false); refused != nil {
			t.Fatalf("slowAfter %v: waitSlot refused with a slot free: %s", slowAfter, refused.reason)
		}
		if got := g.entered.Load(); got != want {
			t.Errorf("slowAfter %v: entered = %d after two calls took slots, want %d", slowAfter, got, want)
		}
		if g.armed.Load() != (slowAfter > 0) {
			t.Errorf("slowAfter %v: armed = %v after two calls took slots", slowAfter, g.armed.Load())
		}
		leaveIdP(g)
		leaveIdP(g)
		if got := g.ended.Load(); got != want || len(g.slots) != 0 {
			t.Errorf("slowAfter %v: ended = %d with %d slots held after both left, want %d and none", slowAfter, got, len(g.slots), want)
		}
	}
}
