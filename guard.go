package oauthintrospection

import (
	"context"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// idpGuard protects the IdP and the gateway from each other. It is part of a middleware's shared
// state, so every handler of the middleware, and every reload with the same configuration, runs on
// the same one.
//
//   - A bound on the introspections in flight: beyond it a miss waits a short bounded time for a
//     slot, then gets 503. A flood of new tokens reaches the IdP as at most maxInFlight
//     concurrent calls, never as an unbounded queue.
//   - A circuit breaker, as in Envoy and resilience4j. It counts introspections, each with its
//     retries, as calls: closed, it counts consecutive failed ones (no answer: transport errors,
//     timeouts, 5xx, 429, a 200 that is no introspection answer); at the threshold it opens, and
//     misses get 503 at once instead of waiting out their retries against a dead IdP. After
//     openFor it lets one probe call through (half-open): an answer closes it, a failure opens it
//     again. Any answer of the IdP, an inactive token or a 4xx included, resets the count.
//   - A stall check, for an IdP that takes connections but never answers (a frozen process): when
//     consecutiveFailures introspections (or all the slots) have been in flight for a quarter of
//     slowAfter, and none has been answered for slowAfter, the breaker opens then, not after
//     timeoutSeconds. When the breaker
//     opens, the calls in flight are cut off: their requests get their 503 (or a stale answer) at
//     once instead of waiting out timeoutSeconds on an IdP that was just judged down.
//
// The breaker judges the IdP by its answers to the clients' tokens: an IdP that fails on some
// tokens (a 5xx for a malformed one) lets whoever sends those tokens open the breaker, which
// costs new tokens a 503 for openFor and never lets one through. circuitBreaker.disabled is for
// such an IdP (docs/resilience.md).
//
// Cached answers never touch the guard: a hit is served whatever its state.
type idpGuard struct {
	slots  chan struct{} // one element per introspection in flight
	slotsV reflect.Value // slots, and the element a call sends into it, for takeSlot
	slotV  reflect.Value
	wait   time.Duration // how long a miss waits for a slot

	threshold int           // consecutive failures that open the breaker; 0 disables it
	openFor   time.Duration // how long it stays open before a probe
	probeFor  time.Duration // a probe that has not ended by then is presumed lost
	slowAfter time.Duration // calls in flight unanswered for this long are a stall; 0: no check
	log       *logger

	// The stall check: entered and ended count the calls that took a slot and the calls that
	// ended. The check, and only the check (or armStall before it schedules one), keeps
	// seenEnded, the ended count it last saw, quietSince, since when that has not moved, and
	// seenEntered, the entered count at its last look.
	entered     atomic.Int64
	ended       atomic.Int64
	seenEnded   int64
	seenEntered int64
	quietSince  time.Time
	armed       atomic.Bool
	// parent is the context every call is made in (a context.Context): it ends when the breaker
	// opens, and a new one is stored for the probe.
	parent atomic.Value

	// troubled is false while the breaker is closed with no failure counted: a call then reads
	// it alone and takes no lock.
	troubled atomic.Bool

	mu       sync.Mutex // guards what follows
	state    int
	failures int                // consecutive failed introspections, while closed
	until    time.Time          // open: when a probe may go; half-open: when its probe is presumed lost
	probing  bool               // half-open: the probe is out
	opened   time.Time          // when it opened from closed
	refused  int                // calls refused since then
	lastWhy  string             // the last failure, for the log
	cutCalls context.CancelFunc // ends parent
}

// The breaker's states.
const (
	breakerClosed = iota
	breakerOpen
	breakerHalfOpen
)

// inFlightRetryAfter is the Retry-After of a 503 for want of an in-flight slot: the calls that
// hold the slots end within a timeoutSeconds, most of them far sooner.
const inFlightRetryAfter = time.Second

func newGuard(cs clientSettings, l *logger) *idpGuard {
	g := &idpGuard{
		slots:     make(chan struct{}, cs.maxInFlight),
		wait:      cs.inFlightWait,
		threshold: cs.breakerFailures,
		openFor:   cs.breakerOpen,
		probeFor:  cs.timeout + time.Second,
		slowAfter: cs.breakerSlow,
		log:       l,
	}
	if g.threshold == 0 {
		// The stall check opens the breaker; a disabled one must never open.
		g.slowAfter = 0
	}
	g.slotsV = reflect.ValueOf(g.slots)
	g.slotV = reflect.ValueOf(struct{}{})
	newParent(g)
	return g
}

// newParent stores a new parent context for calls, and keeps the function that ends it.
func newParent(g *idpGuard) {
	ctx, cancel := context.WithCancel(context.Background())
	g.parent.Store(ctx)
	g.cutCalls = cancel
}

// callParent is the context a call to the IdP is made in: it ends when the breaker opens. (Not
// the request's: the call outlives a cancelled request, since others may wait for it.)
func callParent(g *idpGuard) context.Context {
	return g.parent.Load().(context.Context)
}

// armStall schedules a stall check, unless one is scheduled. The check's function is made once
// per slowAfter at most, not once per call: under Yaegi every func value handed to compiled code
// is dear.
func armStall(g *idpGuard) {
	if !g.armed.CompareAndSwap(false, true) {
		return
	}
	g.seenEnded = g.ended.Load()
	g.seenEntered = g.entered.Load()
	g.quietSince = time.Now()
	time.AfterFunc(stallCheckEvery(g), func() { checkStall(g) })
}

// stallCheckEvery is how often the stall check looks while calls are in flight: a quarter of
// slowAfter, so that calls stalled from the start are found within 1.25 slowAfter.
func stallCheckEvery(g *idpGuard) time.Duration {
	if d := g.slowAfter / 4; d > 10*time.Millisecond {
		return d
	}
	return 10 * time.Millisecond
}

// probeDeadline is the deadline of the half-open probe: an IdP judged down must answer it as fast
// as a healthy one, within slowAfter, and it holds its request no longer than that.
func probeDeadline(g *idpGuard, deadline time.Time) time.Time {
	if g.slowAfter <= 0 {
		return deadline
	}
	if soon := time.Now().Add(g.slowAfter); soon.Before(deadline) {
		return soon
	}
	return deadline
}

// checkStall opens the breaker when enough calls are in flight and none has been answered for
// slowAfter, and looks again later while calls are in flight. Only the calls that were in flight
// at its last look, a quarter of slowAfter ago, count: one slow call joined a moment ago by a
// burst of fresh ones is no stall, while calls that wait a quarter of slowAfter, fifty times a
// normal answer, on an IdP that has answered nothing for slowAfter are. It runs on a timer's
// goroutine, where a panic would end Traefik: it recovers.
func checkStall(g *idpGuard) {
	defer func() {
		if recover() != nil {
			// Not expected; but a check that died must not leave the calls in flight unwatched.
			g.armed.Store(false)
			if len(g.slots) > 0 {
				armStall(g)
			}
		}
	}()
	now := time.Now()
	ended := g.ended.Load()
	if ended != g.seenEnded {
		g.seenEnded = ended
		g.quietSince = now
	}
	// No call ended since quietSince: the calls in flight at the last look, if it was within
	// the quiet time, are all still in flight.
	waiting := int(g.seenEntered - ended)
	g.seenEntered = g.entered.Load()
	quiet := now.Sub(g.quietSince)
	need := g.threshold
	if cap(g.slots) < need {
		need = cap(g.slots)
	}
	if waiting >= need && quiet >= g.slowAfter {
		stalled(g, waiting, quiet)
	}
	if len(g.slots) > 0 {
		time.AfterFunc(stallCheckEvery(g), func() { checkStall(g) })
		return
	}
	g.armed.Store(false)
	// A call may have entered after the look at the slots, seen the check armed and not armed
	// one: arm it for that call.
	if len(g.slots) > 0 {
		armStall(g)
	}
}

// stalled opens a closed breaker on a stall.
func stalled(g *idpGuard, inFlight int, quiet time.Duration) {
	if line := openOnStall(g, inFlight, quiet); line != "" {
		logAlways(g.log, line)
	}
}

// openOnStall opens a closed breaker, and returns the line to log.
func openOnStall(g *idpGuard, inFlight int, quiet time.Duration) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != breakerClosed {
		return ""
	}
	g.failures = g.threshold
	return openBreaker(g, strconv.Itoa(inFlight)+" introspections in flight, none answered for "+quiet.Round(time.Millisecond).String(), time.Now())
}

// enterIdP is what a miss does before it calls the IdP: it asks the breaker, then takes an
// in-flight slot, waiting for one until deadline at the latest. It returns the 503 verdict of a
// refusal, or nil and whether the call is the breaker's probe; the caller must then call leaveIdP.
// Every miss runs it, so what a healthy IdP does not need is in functions of its own: under Yaegi
// a function costs every call a slot for each of its locals (docs/performance.md).
func enterIdP(g *idpGuard, deadline time.Time) (*verdict, bool) {
	probe := false
	if g.threshold != 0 && g.troubled.Load() {
		var refused *verdict
		if refused, probe = admitTroubled(g); refused != nil {
			return refused, false
		}
	}
	// A send that does not wait: a select statement, which the interpreter cannot run safely
	// (interpreter.go), so through reflect, with the values made once in newGuard.
	if g.slotsV.TrySend(g.slotV) {
		if g.slowAfter > 0 {
			// enteredSlot, written out: this is every miss's path.
			g.entered.Add(1)
			if !g.armed.Load() {
				armStall(g)
			}
		}
		return nil, probe
	}
	return waitSlot(g, deadline, probe)
}

// enteredSlot counts a call that took a slot for the stall check, and arms the check.
func enteredSlot(g *idpGuard) {
	g.entered.Add(1)
	if !g.armed.Load() {
		armStall(g)
	}
}

// admitTroubled asks a breaker that has counted failures whether the call may go.
func admitTroubled(g *idpGuard) (*verdict, bool) {
	probe, refusedFor := admitCall(g, time.Now())
	if refusedFor > 0 {
		return unavailable(refusedFor, "IdP circuit breaker open"), false
	}
	return nil, probe
}

// waitSlot waits for an in-flight slot, at most g.wait and never past deadline.
func waitSlot(g *idpGuard, deadline time.Time, probe bool) (*verdict, bool) {
	if sendWithin(g.slotsV, g.slotV, g.wait, deadline) {
		if g.slowAfter > 0 {
			enteredSlot(g)
		}
		return nil, probe
	}
	if probe {
		callEnded(g, probe, callSkipped, "")
	}
	return unavailable(inFlightRetryAfter, "too many introspections in flight"), false
}

// sendWithin sends slot on the channel slots, waiting at most wait and never past deadline, and
// reports whether it did. A select statement would be simpler, but the interpreter cannot run
// one safely (interpreter.go).
func sendWithin(slots, slot reflect.Value, wait time.Duration, deadline time.Time) bool {
	if left := time.Until(deadline); left < wait {
		wait = left
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	chosen, _, _ := reflect.Select([]reflect.SelectCase{{Dir: reflect.SelectSend, Chan: slots, Send: slot}, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)}})
	return chosen == 0
}

// leaveIdP frees the slot enterIdP took, and counts the call's end for the stall check.
func leaveIdP(g *idpGuard) {
	if g.slowAfter > 0 {
		g.ended.Add(1)
	}
	<-g.slots
}

// admitCall asks the breaker whether a call may go to the IdP at now. It returns whether the call
// is the half-open probe, or, when it is refused, in how long a call may be admitted again.
func admitCall(g *idpGuard, now time.Time) (probe bool, refusedFor time.Duration) {
	if g.threshold == 0 || !g.troubled.Load() {
		return false, 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case breakerOpen:
		if now.Before(g.until) {
			g.refused++
			return false, g.until.Sub(now)
		}
		g.state = breakerHalfOpen
	case breakerHalfOpen:
		if g.probing && now.Before(g.until) {
			// The probe decides within timeoutSeconds, often far sooner.
			g.refused++
			left := g.until.Sub(now)
			if g.openFor < left {
				left = g.openFor
			}
			return false, left
		}
	default:
		return false, 0
	}
	// Half-open with no probe out, or with one presumed lost: this call is the probe, and the
	// calls cut off when the breaker opened must not cut it off too.
	if callParent(g).Err() != nil {
		newParent(g)
	}
	g.probing = true
	g.until = now.Add(g.probeFor)
	return true, 0
}

// closedBreaker reports whether the breaker is closed (or disabled): retries go on only then.
func closedBreaker(g *idpGuard) bool {
	if g.threshold == 0 || !g.troubled.Load() {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state == breakerClosed
}

// The outcomes of a call, as the breaker counts them.
const (
	callAnswered = iota // the IdP answered: any answer but the failures below
	callFailed          // a transport error, a timeout, a 5xx, a 429, a 200 that is no answer
	callSkipped         // the call was never made
)

// callEnded tells the breaker how an admitted call ended; why names a failure for the log. An
// answer that is not the probe, to a breaker with no failure counted, changes nothing: introspect,
// every miss's path, does not call it then (a call costs the interpreter more than the test).
func callEnded(g *idpGuard, probe bool, outcome int, why string) {
	if g.threshold == 0 {
		return
	}
	recordCall(g, probe, outcome, why)
}

// recordCall moves the breaker on after a call, and logs a transition.
func recordCall(g *idpGuard, probe bool, outcome int, why string) {
	now := time.Now()
	g.mu.Lock()
	line := breakerStep(g, probe, outcome, why, now)
	g.mu.Unlock()
	if line != "" {
		// Two lines per outage, never rate-limited away: the one that says the breaker closed
		// must follow the one that said it opened.
		logAlways(g.log, line)
	}
}

// breakerStep moves the breaker on after a call and returns the ERROR line of a transition, if
// any. It is called with mu held.
func breakerStep(g *idpGuard, probe bool, outcome int, why string, now time.Time) string {
	if probe {
		g.probing = false
	}
	if outcome == callSkipped {
		return ""
	}
	if outcome == callAnswered {
		return closeBreaker(g, probe, now)
	}
	why = withoutAttempts(why)
	g.lastWhy = why
	if g.state == breakerClosed {
		g.failures++
		g.troubled.Store(true)
		if g.failures < g.threshold {
			return ""
		}
		return openBreaker(g, strconv.Itoa(g.failures)+" consecutive failed introspections (last: "+why+")", now)
	}
	if probe {
		// The probe failed: open again for another openFor.
		g.state = breakerOpen
		g.until = now.Add(g.openFor)
		g.cutCalls()
	}
	return ""
}

// openBreaker opens a closed breaker, cuts the calls in flight off, and returns the line to log.
// It is called with mu held.
func openBreaker(g *idpGuard, why string, now time.Time) string {
	g.opened = now
	g.refused = 0
	g.state = breakerOpen
	g.troubled.Store(true)
	g.until = now.Add(g.openFor)
	g.cutCalls()
	return "IdP circuit breaker opened after " + why + ": misses get 503 without calling the IdP, one probe every " + g.openFor.String()
}

// closeBreaker records an answer of the IdP. A call admitted before the breaker opened may answer
// while it is open; only the probe, or an answer while closed, counts.
func closeBreaker(g *idpGuard, probe bool, now time.Time) string {
	if g.state == breakerClosed {
		g.failures = 0
		g.troubled.Store(false)
		return ""
	}
	if !probe {
		return ""
	}
	line := "IdP circuit breaker closed: the IdP answered again after " + now.Sub(g.opened).Round(time.Millisecond).String() + "; " + strconv.Itoa(g.refused) + " misses were refused while it was open (last failure: " + g.lastWhy + ")"
	g.state = breakerClosed
	g.failures = 0
	g.troubled.Store(false)
	return line
}

// unavailable is the verdict of a miss the guard refused: 503 with a Retry-After in whole seconds,
// at least one (RFC 9110 section 10.2.3).
func unavailable(after time.Duration, reason string) *verdict {
	v := reject(statusUnavailable, nil, reason)
	seconds := int((after + time.Second - 1) / time.Second)
	if seconds < 1 {
		seconds = 1
	}
	v.retryAfter = []string{strconv.Itoa(seconds)}
	return v
}
