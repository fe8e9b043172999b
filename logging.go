package oauthintrospection

import (
	"fmt"
	"log"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errorLogInterval is the least time between two ERROR lines of one kind of one middleware. A
// refused client secret or a dead IdP fails every request; one line per interval, with a count of
// the others, says as much without flooding Traefik's log.
const errorLogInterval = 10 * time.Second

// maxErrorKinds bounds the kinds that get a budget of their own; any further kind shares one.
// Error lines are made of fixed texts with numbers folded away (errorKind), so the kinds are few.
const maxErrorKinds = 256

// logger writes a middleware's log lines. Standard output reaches Traefik's log at DEBUG and the
// standard logger's writer (the interpreter's stderr under Yaegi) reaches it at ERROR. Traefik adds
// the time, so the error logger adds none. Lines never hold a token or a secret: callers pass
// reasons, not values.
//
// ERROR lines are for conditions of the gateway and the IdP. What a client causes goes to DEBUG,
// and every kind of ERROR line has a budget of its own, so that no condition can keep another
// out of the log: a flood of one IdP answer still leaves room for the invalid_client that matters.
type logger struct {
	prefix string
	errs   *log.Logger

	mu    sync.Mutex
	kinds map[string]*errorBudget // guarded by mu
}

// errorBudget is the state of one kind of ERROR line.
type errorBudget struct {
	last       time.Time
	suppressed int
}

func newLogger(name string) *logger {
	return &logger{prefix: "oAuthIntrospection[" + name + "]: ", errs: log.New(log.Writer(), "", 0), kinds: map[string]*errorBudget{}}
}

// logLine writes msg at level "debug" or "error". It is a plain function, not a method: the debug
// line of every denial is written through it, and under Yaegi a method call costs about five
// plain calls (docs/development.md, interpreter costs). The budget of ERROR lines is apart, in
// logError: under Yaegi a call pays for the frame slots of all its branches, and a denial's debug
// line would otherwise pay for the budget's on every refused request.
func logLine(l *logger, level, msg string) {
	if level != "error" {
		fmt.Println(l.prefix + msg)
		return
	}
	logError(l, msg)
}

// logError writes msg as an ERROR line unless a line of its kind was written in the last
// errorLogInterval; the next line that is written says how many were held back.
func logError(l *logger, msg string) {
	now := time.Now()
	l.mu.Lock()
	b := budgetFor(l, errorKind(msg))
	if !b.last.IsZero() && now.Sub(b.last) < errorLogInterval {
		b.suppressed++
		l.mu.Unlock()
		return
	}
	skipped := b.suppressed
	b.suppressed = 0
	b.last = now
	l.mu.Unlock()
	if skipped > 0 {
		msg += " (" + strconv.Itoa(skipped) + " more like it since the last line)"
	}
	l.errs.Print(l.prefix + msg)
}

// logAlways writes an ERROR line that no budget may hold back: a line whose absence would mislead,
// such as the one saying that the circuit breaker closed again.
func logAlways(l *logger, msg string) {
	l.errs.Print(l.prefix + msg)
}

// budgetFor returns the budget of kind. It is called with mu held.
func budgetFor(l *logger, kind string) *errorBudget {
	b := l.kinds[kind]
	if b == nil {
		if len(l.kinds) >= maxErrorKinds {
			kind = ""
			if b = l.kinds[kind]; b != nil {
				return b
			}
		}
		b = &errorBudget{}
		l.kinds[kind] = b
	}
	return b
}

// errorKind is what tells one kind of ERROR line from another: the line without its attempt
// count and with every digit folded to "#", so that no peer can make new kinds by answering with
// ever other status codes, while "endpoint answered 400 (invalid_client)" stays apart from
// "endpoint answered 400 (invalid_request)".
func errorKind(msg string) string {
	return digitFolder.Replace(withoutAttempts(msg))
}

// withoutAttempts returns a failure's reason without the attempt count introspect adds to it.
func withoutAttempts(msg string) string {
	if i := strings.Index(msg, " (attempts: "); i >= 0 {
		return msg[:i]
	}
	return msg
}

var digitFolder = strings.NewReplacer("0", "#", "1", "#", "2", "#", "3", "#", "4", "#", "5", "#", "6", "#", "7", "#", "8", "#", "9", "#")
