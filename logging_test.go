package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"bytes"
	"log"
	"strings"
	"testing"
	"time"
)

func TestErrorLinesAreRateLimited(t *testing.T) {
	var out bytes.Buffer
	l := newLogger("limit@test")
	l.errs = log.New(&out, "", 0)
	for i := 0; i < 5; i++ {
		logLine(l, "error", "introspection failed")
	}
	if got := strings.Count(out.String(), "\n"); got != 1 {
		t.Fatalf("%d lines within the interval, want 1:\n%s", got, out.String())
	}
	// Move the last line back past the interval instead of waiting for it.
	l.mu.Lock()
	l.kinds["introspection failed"].last = time.Now().Add(-errorLogInterval)
	l.mu.Unlock()
	logLine(l, "error", "introspection failed")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out.String())
	}
	expectEqual(t, "first line", lines[0], "oAuthIntrospection[limit@test]: introspection failed")
	expectEqual(t, "second line", lines[1], "oAuthIntrospection[limit@test]: introspection failed (4 more like it since the last line)")
}
