package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// What one Redis client may cost the Redis that every replica shares: at most redisMaxBusy
// connections in use, whatever the traffic.

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRedisBusyBound: with redisMaxBusy commands held by Redis, one more is never sent. It gives
// up after half the timeout with errRedisBusy, which the breaker does not count: the next command
// once Redis answers is sent, not skipped.
func TestRedisBusyBound(t *testing.T) {
	fake := startHoldingRedis(t, nil, "SET")
	rc := newRedisClient([]string{fake.ln.Addr().String()}, 4*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, redisMaxBusy)
	for i := 0; i < redisMaxBusy; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := redisDo(rc, "SET", "held-"+strconv.Itoa(i), "v")
			errs <- err
		}(i)
	}
	waitFor(t, 3*time.Second, "the held commands to reach Redis", func() bool { return fake.count("SET") == redisMaxBusy })

	start := time.Now()
	_, err := redisDo(rc, "SET", "one-more", "v")
	if err != errRedisBusy {
		t.Fatalf("a command beyond %d in flight: %v, want errRedisBusy", redisMaxBusy, err)
	}
	if waited := time.Since(start); waited < 1500*time.Millisecond {
		t.Errorf("it gave up after %v, want half the timeout (2 s)", waited)
	}
	expectEqual(t, "log category", redisErrorCategory(err), "every connection stayed busy")
	if n := fake.count("SET"); n != redisMaxBusy {
		t.Errorf("Redis got %d commands, want %d", n, redisMaxBusy)
	}
	if p := fake.peak.Load(); p != redisMaxBusy {
		t.Errorf("%d connections open at once, want %d", p, redisMaxBusy)
	}
	if rc.failures.Load() != 0 || rc.skipUntil.Load() != 0 {
		t.Errorf("the breaker counted the refusal: %d failures, skipping until %d", rc.failures.Load(), rc.skipUntil.Load())
	}

	fake.release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a held command: %v", err)
		}
	}
	expectRedis(t, rc, "OK", "SET", "after", "v")
}

// TestRedisBusyBoundThroughHandlers: a flood of made-up tokens, spread over two handlers of one
// middleware and a second New, while Redis is slow, opens at most redisMaxBusy connections, and
// every request is still judged by the IdP.
func TestRedisBusyBoundThroughHandlers(t *testing.T) {
	fake := startHoldingRedis(t, map[string]string{"MGET": "*2\r\n$-1\r\n$-1\r\n"}, "MGET")
	idp := newRevocableIDP(t)
	cfg := sharedConfig(idp, fake.ln.Addr().String(), func(c *Config) {
		c.Cache.Redis.TimeoutMilliseconds = 4000
		c.ClientConfig.MaxInFlight = 4
		c.ClientConfig.InFlightWaitMilliseconds = 5000
	})
	h1, _ := replica(t, "flood@redis", cfg)
	h2, _ := replica(t, "flood@redis", cfg)
	reloaded, _ := replica(t, "flood@redis", cfg)
	handlers := []http.Handler{h1, h2, reloaded}
	const flood = 3 * redisMaxBusy
	codes := make(chan int, flood)
	for i := 0; i < flood; i++ {
		go func(i int) { codes <- send(handlers[i%3], bearerRequest("bogus-flood-"+strconv.Itoa(i))).Code }(i)
	}
	// The lookups beyond the bound give up after 2 s and ask the IdP, which refuses the token.
	for i := 0; i < flood-redisMaxBusy; i++ {
		if code := <-codes; code != http.StatusUnauthorized {
			t.Errorf("a made-up token beyond the bound: %d, want 401", code)
		}
	}
	if p := fake.peak.Load(); p != redisMaxBusy {
		t.Errorf("%d Redis connections open at once, want %d", p, redisMaxBusy)
	}
	fake.release()
	for i := 0; i < redisMaxBusy; i++ {
		if code := <-codes; code != http.StatusUnauthorized {
			t.Errorf("a made-up token looked up in Redis: %d, want 401", code)
		}
	}
}

// TestRevocationMarkerBesideBusyLookups: a revocation's marker is written while a flood of
// lookups holds every busy slot: the lookups must not keep out the one write that stops other
// replicas from accepting a revoked token. The flood goes through one handler, the revocation
// through another and through a second New.
func TestRevocationMarkerBesideBusyLookups(t *testing.T) {
	fake := startHoldingRedis(t, map[string]string{"MGET": "*2\r\n$-1\r\n$-1\r\n"}, "MGET")
	idp := newRevocableIDP(t)
	cfg := sharedConfig(idp, fake.ln.Addr().String(), func(c *Config) {
		c.Cache.Redis.TimeoutMilliseconds = 3000
		c.ClientConfig.MaxInFlight = 64
		c.ClientConfig.InFlightWaitMilliseconds = 5000
	})
	flooded, _ := replica(t, "starve@marker", cfg)
	revoking, _ := replica(t, "starve@marker", cfg)
	logs := captureLogs(inner(revoking))
	done := make(chan int, redisMaxBusy)
	for i := 0; i < redisMaxBusy; i++ {
		go func(i int) { done <- send(flooded, bearerRequest("bogus-starve-"+strconv.Itoa(i))).Code }(i)
	}
	waitFor(t, 3*time.Second, "the flood's lookups to reach Redis", func() bool { return fake.count("MGET") == redisMaxBusy })

	expectStatus(t, revokeThrough(revoking, "tok-revoked-during-flood", rsBasic), http.StatusOK)
	reloaded, _ := replica(t, "starve@marker", cfg)
	expectStatus(t, revokeThrough(reloaded, "tok-also-revoked", rsBasic), http.StatusOK)
	if n := fake.count("SET"); n != 2 { // the flood writes nothing until its lookups are answered
		t.Errorf("%d markers reached Redis while the lookups held every slot, want 2", n)
	}
	// (Tiers of earlier tests, whose Redis is gone, are marked too: only this one's refusal counts.)
	if strings.Contains(logs(), "Redis write of a revocation failed (every connection stayed busy)") {
		t.Errorf("a marker was refused for lack of a busy slot:\n%s", logs())
	}
	fake.release()
	for i := 0; i < redisMaxBusy; i++ {
		if code := <-done; code != http.StatusUnauthorized {
			t.Errorf("a made-up token: %d, want 401", code)
		}
	}
}
