package oauthintrospection

import (
	"context"
	"net/http"
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
//   - A call still unanswered after slowAfter counts as failed at that moment, as resilience4j's
//     slow calls do, so that a frozen IdP opens the breaker in slowAfter and not in timeoutSeconds;
//     its answer, if it comes, still counts as an answer. When the breaker opens, the calls in
//     flight are cut off: their requests get their 503 (or a stale answer) at once instead of
//     waiting out timeoutSeconds on an IdP that was just judged down.
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
	slowAfter time.Duration // a call unanswered by then counts as failed
	log       *logger

	// troubled is false while the breaker is closed with no failure counted: a call then reads
	// it alone and takes no lock.
	troubled atomic.Bool

	mu       sync.Mutex // guards what follows
	state    int
	failures int       // consecutive failed introspections, while closed
	until    time.Time // open: when a probe may go; half-open: when its probe is presumed lost
	probing  bool      // half-open: the probe is out
	opened   time.Time // when it opened from closed
	refused  int       // calls refused since then
	lastWhy  string    // the last failure, for the log
	// cut is done when the breaker opens: calls in flight end with it. A new one is made when the
	// breaker closes.
	cut      context.Context
	cutCalls context.CancelFunc
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
	g.slotsV = reflect.ValueOf(g.slots)
	g.slotV = reflect.ValueOf(struct{}{})
	g.cut, g.cutCalls = context.WithCancel(context.Background())
	return g
}

// cutWith arranges for cancel to be called when the breaker opens, and returns the function that
// undoes that, or nil when there is no breaker.
func cutWith(g *idpGuard, cancel context.CancelFunc) func() bool {
	if g.threshold == 0 {
		return nil
	}
	g.mu.Lock()
	cut := g.cut
	g.mu.Unlock()
	return context.AfterFunc(cut, cancel)
}

// watchCall starts the watch of a call that counts it as failed once it has been unanswered for
// slowAfter. The caller stops the timer when the call ends, and passes what the watch did to
// callEnded through slow.
func watchCall(g *idpGuard, probe bool, slow *atomic.Bool) *time.Timer {
	if g.threshold == 0 || g.slowAfter <= 0 {
		return nil
	}
	return time.AfterFunc(g.slowAfter, func() {
		slow.Store(true)
		callEnded(g, probe, callFailed, "no answer within "+g.slowAfter.String())
	})
}

// enterIdP is what a miss does before it calls the IdP: it asks the breaker, then takes an
// in-flight slot, waiting for one until deadline at the latest. It returns the 503 verdict of a
// refusal, or nil and whether the call is the breaker's probe; the caller must then call leaveIdP.
func enterIdP(g *idpGuard, deadline time.Time) (*verdict, bool) {
	probe, refusedFor := admitCall(g, time.Now())
	if refusedFor > 0 {
		return unavailable(refusedFor, "IdP circuit breaker open"), false
	}
	if !takeSlot(g, deadline) {
		if probe {
			callEnded(g, probe, callSkipped, "")
		}
		return unavailable(inFlightRetryAfter, "too many introspections in flight"), false
	}
	return nil, probe
}

// leaveIdP frees the slot enterIdP took.
func leaveIdP(g *idpGuard) {
	<-g.slots
}

// takeSlot takes a slot, waiting at most g.wait for one, and never past deadline. The slots' channel is used through
// reflect: a send with a fallback is a select statement, which the interpreter cannot run safely
// (interpreter.go), and the values are made once, in newGuard, because each reflect.ValueOf costs
// a miss a few allocations.
func takeSlot(g *idpGuard, deadline time.Time) bool {
	if g.slotsV.TrySend(g.slotV) {
		return true
	}
	wait := time.Until(deadline)
	if g.wait < wait {
		wait = g.wait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	chosen, _, _ := reflect.Select([]reflect.SelectCase{{Dir: reflect.SelectSend, Chan: g.slotsV, Send: g.slotV}, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)}})
	return chosen == 0
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
	if g.cut.Err() != nil {
		g.cut, g.cutCalls = context.WithCancel(context.Background())
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

// callEnded tells the breaker how an admitted call ended; why names a failure for the log.
func callEnded(g *idpGuard, probe bool, outcome int, why string) {
	if g.threshold == 0 {
		return
	}
	if outcome == callAnswered && !probe && !g.troubled.Load() {
		return
	}
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
		g.opened = now
		g.refused = 0
		g.state = breakerOpen
		g.until = now.Add(g.openFor)
		g.cutCalls()
		return "IdP circuit breaker opened after " + strconv.Itoa(g.failures) + " consecutive failed introspections (last: " + why + "): misses get 503 without calling the IdP, one probe every " + g.openFor.String()
	}
	if probe {
		// The probe failed: open again for another openFor.
		g.state = breakerOpen
		g.until = now.Add(g.openFor)
		g.cutCalls()
	}
	return ""
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
	v := reject(http.StatusServiceUnavailable, nil, reason)
	seconds := int((after + time.Second - 1) / time.Second)
	if seconds < 1 {
		seconds = 1
	}
	v.retryAfter = []string{strconv.Itoa(seconds)}
	return v
}
