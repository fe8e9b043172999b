package oauthintrospection

import (
	"fmt"
	"log"
	"strconv"
	"sync"
	"time"
)

// errorLogInterval is the least time between two ERROR lines of one middleware. A refused client
// secret or a dead IdP fails every request; one line per interval, with a count of the others,
// says as much without flooding Traefik's log.
const errorLogInterval = 10 * time.Second

// logger writes a middleware's log lines. Standard output reaches Traefik's log at DEBUG and the
// standard logger's writer (the interpreter's stderr under Yaegi) reaches it at ERROR. Traefik adds
// the time, so the error logger adds none. Lines never hold a token or a secret: callers pass
// reasons, not values.
type logger struct {
	prefix string
	errs   *log.Logger

	mu         sync.Mutex
	lastError  time.Time
	suppressed int
}

func newLogger(name string) *logger {
	return &logger{prefix: "oAuthIntrospection[" + name + "]: ", errs: log.New(log.Writer(), "", 0)}
}

// log writes msg at level "debug" or "error".
func (l *logger) log(level, msg string) {
	if level != "error" {
		fmt.Println(l.prefix + msg)
		return
	}
	now := time.Now()
	l.mu.Lock()
	if !l.lastError.IsZero() && now.Sub(l.lastError) < errorLogInterval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	skipped := l.suppressed
	l.suppressed = 0
	l.lastError = now
	l.mu.Unlock()
	if skipped > 0 {
		msg += " (" + strconv.Itoa(skipped) + " more errors since the last line)"
	}
	l.errs.Print(l.prefix + msg)
}
