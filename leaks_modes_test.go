//go:build !yaegi

package oauthintrospection

// The leak tests of leaks_test.go that need the harness: the interpreted plugin loaded and built
// exactly as Traefik does (plugin stdout and stderr are its log), compiled only.

import (
	"context"
	"runtime"
	"testing"
)

func TestLogSecrecyCompiled(t *testing.T) {
	runLogSecrecy(t, compiledBuilder)
}

// TestLogSecrecyInterpreted reads what Traefik would log: the interpreter's stdout and stderr.
func TestLogSecrecyInterpreted(t *testing.T) {
	runLogSecrecy(t, loadYaegiPlugin(t).builder())
}

// TestRepeatedNewTraefikPath builds the interpreted plugin again and again with one configuration,
// then alternating two, through Traefik's path (CreateConfig, mapstructure decode of
// file-provider strings, New through reflect), and checks that goroutines and the heap do not grow.
// A kept generation costs about 0.4 MiB (see TestRepeatedNewDoesNotLeak), so 5 MiB fails from
// about a dozen kept generations on.
func TestRepeatedNewTraefikPath(t *testing.T) {
	const rounds = 150 // about 7 ms a build under -race; 150 kept generations would be 60 MiB
	p := loadYaegiPlugin(t)
	options := func(generation int) map[string]any {
		o := hubOptions("http://127.0.0.1:1/introspect")
		if generation%2 == 1 {
			o = with(o, "claims", nil)
			o = with(o, "usernameClaim", "sub")
			o = with(o, "cache", map[string]any{"ttlSeconds": "60", "negativeTtlSeconds": "30"})
		}
		return o
	}
	build := func(generation int) {
		if _, err := p.build(context.Background(), &upstream{}, options(generation), "reload@file"); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
	for i := 0; i < 4; i++ {
		build(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()
	for i := 0; i < rounds; i++ {
		build(0)
	}
	for i := 0; i < rounds; i++ {
		build(i)
	}
	expectGoroutinesBackTo(t, baseline)
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap: %d KiB before, %d KiB after 2×%d builds (growth %d KiB)", before.HeapAlloc>>10, after.HeapAlloc>>10, rounds, growth>>10)
	if growth > 5<<20 {
		t.Errorf("the heap grew by %d KiB over %d builds", growth>>10, 2*rounds)
	}
}
