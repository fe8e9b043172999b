package oauthintrospection

import (
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
//   - A circuit breaker, as in Envoy and resilience4j: closed, it counts consecutive failed calls
//     (transport errors, timeouts, 5xx and 429); at the threshold it opens, and misses get 503
//     at once instead of waiting out their retries against a dead IdP. After openFor it lets one
//     probe call through (half-open): an answer closes it, a failure opens it again. Any answer of
//     the IdP that is not such a failure, an inactive token or a 4xx included, resets the count.
//
// Cached answers never touch the guard: a hit is served whatever its state.
type idpGuard struct {
	slots chan struct{} // one element per introspection in flight
	wait  time.Duration // how long a miss waits for a slot

	threshold int           // consecutive failures that open the breaker; 0 disables it
	openFor   time.Duration // how long it stays open before a probe
	probeFor  time.Duration // a probe that has not ended by then is presumed lost
	log       *logger

	// troubled is false while the breaker is closed with no failure counted: a call then reads
	// it alone and takes no lock.
	troubled atomic.Bool

	mu       sync.Mutex // guards what follows
	state    int
	failures int       // consecutive failed calls, while closed
	until    time.Time // open: when a probe may go; half-open: when its probe is presumed lost
	probing  bool      // half-open: the probe is out
	opened   time.Time // when it opened from closed
	refused  int       // calls refused since then
	lastWhy  string    // the last failure, for the log
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
	return &idpGuard{
		slots:     make(chan struct{}, cs.maxInFlight),
		wait:      cs.inFlightWait,
		threshold: cs.breakerFailures,
		openFor:   cs.breakerOpen,
		probeFor:  cs.timeout + time.Second,
		log:       l,
	}
}

// enterIdP is what a miss does before it calls the IdP: it asks the breaker, then takes an
// in-flight slot. It returns the 503 verdict of a refusal, or nil and whether the first call is
// the breaker's probe; the caller must then call leaveIdP.
func enterIdP(g *idpGuard) (*verdict, bool) {
	probe, refusedFor := admitCall(g, time.Now())
	if refusedFor > 0 {
		return unavailable(refusedFor, "IdP circuit breaker open"), false
	}
	if !takeSlot(g.slots, g.wait) {
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

// takeSlot takes a slot of slots, waiting at most wait for one. reflect.Select stands in for a
// select statement (interpreter.go).
func takeSlot(slots chan struct{}, wait time.Duration) bool {
	send := reflect.SelectCase{Dir: reflect.SelectSend, Chan: reflect.ValueOf(slots), Send: reflect.ValueOf(struct{}{})}
	chosen, _, _ := reflect.Select([]reflect.SelectCase{send, {Dir: reflect.SelectDefault}})
	if chosen == 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	chosen, _, _ = reflect.Select([]reflect.SelectCase{send, {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(t.C)}})
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
			g.refused++
			return false, g.openFor
		}
	default:
		return false, 0
	}
	// Half-open with no probe out, or with one presumed lost: this call is the probe.
	g.probing = true
	g.until = now.Add(g.probeFor)
	return true, 0
}

// The outcomes of a call, as the breaker counts them.
const (
	callAnswered = iota // the IdP answered: any answer but a 5xx or a 429
	callFailed          // a transport error, a timeout, a 5xx or a 429
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
		return "IdP circuit breaker opened after " + strconv.Itoa(g.failures) + " consecutive failed calls (last: " + why + "): misses get 503 without calling the IdP, one probe every " + g.openFor.String()
	}
	if probe {
		// The probe failed: open again for another openFor.
		g.state = breakerOpen
		g.until = now.Add(g.openFor)
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
	line := "IdP circuit breaker closed: the IdP answered again after " + now.Sub(g.opened).Round(time.Millisecond).String() + "; " + strconv.Itoa(g.refused) + " calls were refused while it was open (last failure: " + g.lastWhy + ")"
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
