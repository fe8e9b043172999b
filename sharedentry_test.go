package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// The shared tier's entries and markers as Redis holds them, read and written by the test
// itself: which entries a replica trusts, how long they live, what is never written, and what
// a Redis failure leaves in the log.

import (
	"bufio"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sharedKeys returns the Redis keys of token's answer and of its revocation marker for h.
func sharedKeys(h http.Handler, token string) (answer, marker string) {
	t := inner(h).settings.shared
	sum := cacheKey(sha256.Sum256([]byte(token)))
	return sharedAnswerKey(t, sum), sharedMarkerKey(t, sum)
}

// TestSharedEntryAgainstMarker: an entry is trusted only when it was stored more than a second
// after the token's revocation marker; an unreadable marker distrusts every entry.
func TestSharedEntryAgainstMarker(t *testing.T) {
	srv := startRedis(t)
	rc := testRedisClient(srv.addr, "")
	idp := newRevocableIDP(t)
	// Two handlers of one middleware, as a second router or a reload builds them: they take turns.
	h1, up1 := replica(t, "marker@entry", sharedConfig(idp, srv.addr, nil))
	h2, up2 := replica(t, "marker@entry", sharedConfig(idp, srv.addr, nil))
	revokedAt := time.Now().Add(-time.Minute).UnixNano()
	exp := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	for i, test := range []struct {
		desc     string
		stored   int64
		marker   string
		fromPeer bool // the answer comes from the entry, not from the IdP
	}{
		{desc: "stored just over a second after the marker", stored: revokedAt + int64(time.Second) + 1, marker: strconv.FormatInt(revokedAt, 10), fromPeer: true},
		{desc: "stored exactly a second after the marker", stored: revokedAt + int64(time.Second), marker: strconv.FormatInt(revokedAt, 10)},
		{desc: "stored before the marker", stored: revokedAt - 1, marker: strconv.FormatInt(revokedAt, 10)},
		{desc: "a marker that is not a time", stored: revokedAt + int64(time.Minute), marker: "later"},
	} {
		h, up := h1, up1
		if i%2 == 1 {
			h, up = h2, up2
		}
		token := "tok-marker-" + strconv.Itoa(i)
		answerKey, markerKey := sharedKeys(h, token)
		entry := "v1 " + strconv.FormatInt(test.stored, 10) + ` {"active":true,"grp":"admin","sub":"peer","exp":` + exp + `}`
		expectRedis(t, rc, "OK", "SET", answerKey, entry, "EX", "60")
		expectRedis(t, rc, "OK", "SET", markerKey, test.marker, "EX", "60")
		before := idp.introspected.Load()
		expectStatus(t, send(h, bearerRequest(token)), http.StatusOK)
		req, _ := up.seen()
		asked := idp.introspected.Load() != before
		if want := map[bool]string{true: "peer", false: token}[test.fromPeer]; req == nil || req.Header.Get("Subject") != want || asked == test.fromPeer {
			t.Errorf("%s: Subject %q, IdP asked %v; want Subject %q", test.desc, req.Header.Get("Subject"), asked, want)
		}
	}
}

// TestSharedEntryLifetimes: an active answer lives in Redis until the earlier of ttlSeconds and
// its exp; an answer judged unusable is not written, a claims refusal is; with no negative
// caching an inactive answer is not written; a revocation marker outlives every entry of every
// tier under its prefix. None of it logs an error.
func TestSharedEntryLifetimes(t *testing.T) {
	srv := startRedis(t)
	rc := testRedisClient(srv.addr, "")
	idp := newRevocableIDP(t) // its answers expire in an hour
	cfg := sharedConfig(idp, srv.addr, func(c *Config) {
		c.Cache.TTLSeconds = 7200
		c.Cache.NegativeTTLSeconds = 0
		c.Cache.Redis.KeyPrefix = "lifetimes:"
		c.Claims = "Equals(`grp`, `root`)"
	})
	strict, _ := replica(t, "strict@lifetimes", cfg)
	logs := captureLogs(inner(strict))
	pttl := func(key string) int64 {
		t.Helper()
		return expectRedis(t, rc, "", "PTTL", key).n
	}

	// A refusal by the claims expression is this replica's verdict, not the IdP's answer: the
	// answer is shared, and a replica with other claims forwards it without asking the IdP.
	expectStatus(t, send(strict, bearerRequest("tok-life")), http.StatusForbidden)
	answerKey, markerKey := sharedKeys(strict, "tok-life")
	if left := pttl(answerKey); left <= 3590_000 || left > 3600_000 {
		t.Errorf("the entry of an answer expiring in an hour lives %d ms with ttlSeconds 7200", left)
	}
	open, _ := replica(t, "open@lifetimes", sharedConfig(idp, srv.addr, func(c *Config) { c.Cache.TTLSeconds = 7200; c.Cache.Redis.KeyPrefix = "lifetimes:" }))
	expectStatus(t, send(open, bearerRequest("tok-life")), http.StatusOK)
	if n := idp.introspected.Load(); n != 1 {
		t.Errorf("the IdP got %d calls, want 1: the refused answer was not shared", n)
	}

	expectStatus(t, send(strict, bearerRequest("bogus-life")), http.StatusUnauthorized)
	if bogusKey, _ := sharedKeys(strict, "bogus-life"); pttl(bogusKey) != -2 {
		t.Errorf("an inactive answer was written with negativeTtlSeconds 0")
	}

	if out := logs(); strings.Contains(out, "shared cache") {
		t.Errorf("a healthy Redis left errors in the log:\n%s", out)
	}
	// A marker outlives every entry under its prefix, whichever tier writes it: a tier of
	// ttlSeconds 60 on another client (another timeout) shares strict's prefix. sharedMark is
	// called directly: a revocation through the middleware marks the tiers of every registered
	// middleware, those of other tests too, whose Redis may be gone.
	short, _ := replica(t, "short@lifetimes", sharedConfig(idp, srv.addr, func(c *Config) {
		c.Cache.TTLSeconds = 60
		c.Cache.Redis.TimeoutMilliseconds = 300
		c.Cache.Redis.KeyPrefix = "lifetimes:"
	}))
	st := inner(short).settings.shared
	tiers, longest := registeredTiers()
	writers := 0
	for _, tier := range tiers {
		if tier.revoked == st.revoked {
			writers++
		}
	}
	if writers != 2 || longest[st.revoked] != 7200 {
		t.Errorf("%d tiers write markers under the prefix, the longest ttlSeconds %d; want 2 (one per client) and 7200", writers, longest[st.revoked])
	}
	sharedMark(inner(short), st, markerKey, time.Now(), longest[st.revoked])
	if left := pttl(markerKey); left <= 7201_000 || left > 7202_000 {
		t.Errorf("the revocation marker lives %d ms, want just under the longest ttlSeconds + 2 s", left)
	}
	if out := logs(); strings.Contains(out, "shared cache") {
		t.Errorf("a healthy Redis left errors in the log:\n%s", out)
	}

	// Where in-process entries can serve stale for longer than Redis keeps answers, the marker
	// outlives them too: localTtlSeconds 1 and staleIfErrorSeconds 600 beat ttlSeconds 60.
	stale, _ := replica(t, "stale@lifetimes", sharedConfig(idp, srv.addr, func(c *Config) {
		c.Cache.TTLSeconds = 60
		c.Cache.StaleIfErrorSeconds = 600
		c.Cache.Redis.KeyPrefix = "lifetimes-stale:"
	}))
	stt := inner(stale).settings.shared
	if _, longest := registeredTiers(); longest[stt.revoked] != 601 {
		t.Errorf("a marker under the stale tier's prefix must cover %d s, want 601 (local TTL and stale window)", longest[stt.revoked])
	}
	_, staleMarker := sharedKeys(stale, "tok-life")
	sharedMark(inner(stale), stt, staleMarker, time.Now(), 601)
	if left := pttl(staleMarker); left <= 602_000 || left > 603_000 {
		t.Errorf("the revocation marker lives %d ms, want just under 603 s", left)
	}

	// A reload that changes ttlSeconds reads other keys: entries written to live longer than its
	// markers are not its own.
	shorter, _ := replica(t, "strict@lifetimes", sharedConfig(idp, srv.addr, func(c *Config) {
		c.Cache.TTLSeconds = 60
		c.Cache.NegativeTTLSeconds = 0
		c.Cache.Redis.KeyPrefix = "lifetimes:"
		c.Claims = "Equals(`grp`, `root`)"
	}))
	if shorterKey, _ := sharedKeys(shorter, "tok-life"); shorterKey == answerKey {
		t.Errorf("ttlSeconds 60 and 7200 share the answer key %s", answerKey)
	}
	before := idp.introspected.Load()
	expectStatus(t, send(shorter, bearerRequest("tok-life")), http.StatusForbidden)
	if idp.introspected.Load() != before+1 {
		t.Errorf("the reload with a shorter ttlSeconds read the entry of the longer one")
	}

	// A marker is written even while the client's breaker skips calls.
	inner(short).settings.shared.client.skipUntil.Store(time.Now().Add(time.Hour).UnixNano())
	_, skippedMarker := sharedKeys(short, "tok-skipped")
	sharedMark(inner(short), st, skippedMarker, time.Now(), 60)
	if left := pttl(skippedMarker); left <= 61_000 {
		t.Errorf("with the breaker open the marker was not written (PTTL %d)", left)
	}

	// An answer whose exp does not parse gives 503 and is not shared: each replica asks.
	var calls atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"exp":"soon"}`)
	}))
	t.Cleanup(func() { broken.Close() })
	for _, name := range []string{"a@broken", "b@broken"} {
		c := sharedConfig(idp, srv.addr, nil)
		c.ClientConfig.URL = broken.URL
		h, _ := replica(t, name, c)
		expectStatus(t, send(h, bearerRequest("tok-broken")), http.StatusServiceUnavailable)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the IdP got %d calls for an unusable answer and two replicas, want 2", n)
	}
}

// TestSharedEntryLivesFromItsQuestion: an entry lives ttlSeconds from when the IdP was asked, not
// from when it answered: a revocation marker, which lives as long as entries can from the
// revocation on, then outlives every entry asked before it, however late its answer came.
func TestSharedEntryLivesFromItsQuestion(t *testing.T) {
	srv := startRedis(t)
	rc := testRedisClient(srv.addr, "")
	idp := newRevocableIDP(t)
	release := make(chan struct{})
	var arrivedAt atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrivedAt.Store(time.Now().UnixNano())
		firstReady(release, r.Context().Done())
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"active":true,"grp":"admin","sub":"late"}`)
	}))
	t.Cleanup(func() { slow.Close() })
	h, _ := replica(t, "late@lifetimes", sharedConfig(idp, srv.addr, func(c *Config) {
		c.ClientConfig.URL = slow.URL
		c.ClientConfig.TimeoutSeconds = 10
		c.Cache.TTLSeconds = 5
	}))
	done := make(chan int, 1)
	go func() { done <- send(h, bearerRequest("tok-late")).Code }()
	waitFor(t, 5*time.Second, "the IdP to take the introspection", func() bool { return arrivedAt.Load() != 0 })
	waitFor(t, 5*time.Second, "the answer to be 1.5 s late", func() bool {
		return time.Since(time.Unix(0, arrivedAt.Load())) > 1500*time.Millisecond
	})
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Fatalf("the late answer: %d, want 200", code)
	}
	answerKey, _ := sharedKeys(h, "tok-late")
	if left := expectRedis(t, rc, "", "PTTL", answerKey).n; left <= 0 || left > 3500 {
		t.Errorf("an answer 1.5 s late, with ttlSeconds 5, lives %d ms in Redis; want at most 3.5 s", left)
	}
}

// TestSharedMarkerStopsStaleAnswers: while the IdP fails, a token revoked through another
// replica (its marker in Redis) is not served from this middleware's stale local answer; a token
// without a marker is, as staleIfErrorSeconds says. Two handlers of one middleware take turns.
func TestSharedMarkerStopsStaleAnswers(t *testing.T) {
	srv := startRedis(t)
	rc := testRedisClient(srv.addr, "")
	idp := newRevocableIDP(t)
	cfg := sharedConfig(idp, srv.addr, func(c *Config) { c.Cache.StaleIfErrorSeconds = 600 })
	h1, _ := replica(t, "stale@marker", cfg)
	h2, up2 := replica(t, "stale@marker", cfg)
	kept, revoked := "tok-stale-kept", "tok-stale-revoked"
	for _, token := range []string{kept, revoked} {
		expectStatus(t, send(h1, bearerRequest(token)), http.StatusOK)
	}
	// Another replica revoked one token: the IdP knows it, and Redis holds its marker. The other's
	// entry has left Redis, so that only the local answer can stand in for it.
	idp.mu.Lock()
	idp.revoked[revoked] = true
	idp.mu.Unlock()
	_, marker := sharedKeys(h1, revoked)
	expectRedis(t, rc, "OK", "SET", marker, strconv.FormatInt(time.Now().UnixNano(), 10), "EX", "60")
	keptKey, _ := sharedKeys(h1, kept)
	expectRedis(t, rc, "", "DEL", keptKey)
	idp.failIntrospect.Store(true)
	c := inner(h1).cache
	waitFor(t, 5*time.Second, "the local answers to pass their TTL (localTtlSeconds 1)", func() bool {
		for _, token := range []string{kept, revoked} {
			if e := cachedEntry(c, cacheKey(sha256.Sum256([]byte(token)))); e == nil || time.Now().Unix() < e.freshUntil {
				return false
			}
		}
		return true
	})
	expectStatus(t, send(h2, bearerRequest(kept)), http.StatusOK)
	if req, _ := up2.seen(); req == nil || req.Header.Get("Subject") != kept {
		t.Errorf("the stale answer of the token without a marker was not served")
	}
	expectStatus(t, send(h2, bearerRequest(revoked)), http.StatusServiceUnavailable)
	expectStatus(t, send(h1, bearerRequest(revoked)), http.StatusServiceUnavailable)
}

// TestSharedTierFailuresLogged: a Redis that fails is logged once per failed command, and not
// again for the commands the client's breaker then skips; a revocation marker is written past
// the breaker, and its failure logged.
func TestSharedTierFailuresLogged(t *testing.T) {
	srv := startRedis(t)
	idp := newRevocableIDP(t)
	h, _ := replica(t, "down@logged", sharedConfig(idp, srv.addr, nil))
	logs := captureLogs(inner(h))
	srv.stop()
	expectStatus(t, send(h, bearerRequest("tok-down-0")), http.StatusOK)
	if n := strings.Count(logs(), "shared cache: Redis read failed"); n != 1 {
		t.Fatalf("one failed read logged %d times:\n%s", n, logs())
	}
	requests := redisFailuresToOpen + 3
	for i := 1; i < requests; i++ {
		expectStatus(t, send(h, bearerRequest("tok-down-"+strconv.Itoa(i))), http.StatusOK)
	}
	if n := strings.Count(logs(), "shared cache: Redis read failed"); n >= requests {
		t.Errorf("%d reads, %d of them logged: the skipped ones were logged too", requests, n)
	}
	// A revocation marker is tried even now that the breaker skips calls, and its failure is an
	// ERROR line that says what it costs. sharedMark is called directly (TestSharedEntryLifetimes).
	tier := inner(h).settings.shared
	_, marker := sharedKeys(h, "tok-down-0")
	sharedMark(inner(h), tier, marker, time.Now(), tier.markFor)
	if !strings.Contains(logs(), "shared cache: Redis write of a revocation failed (") || !strings.Contains(logs(), "other replicas may accept the token for up to 30 s") {
		t.Errorf("a failed marker write was not logged as such:\n%s", logs())
	}
}

// fakeRedis answers every command with a reply chosen by its name (+OK by default), which lets a
// test send what no real Redis sends, and records the commands it gets.
type fakeRedis struct {
	ln      net.Listener
	replies map[string]string
	holdCmd string        // a command answered only once hold is closed (release)
	hold    chan struct{} //
	release func()        // closes hold, once
	open    atomic.Int32  // connections open now
	peak    atomic.Int32  // the most connections open at once
	mu      sync.Mutex
	cmds    []string
}

func startFakeRedis(t *testing.T, replies map[string]string) *fakeRedis {
	return startHoldingRedis(t, replies, "")
}

// startHoldingRedis is startFakeRedis with every command named cmd held until f.hold is closed;
// the test's cleanup closes it if the test has not.
func startHoldingRedis(t *testing.T, replies map[string]string, cmd string) *fakeRedis {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFakeRedis(t, ln, replies, cmd)
}

// serveFakeRedis serves the fake on ln (plain TCP, or a TLS listener).
func serveFakeRedis(t *testing.T, ln net.Listener, replies map[string]string, cmd string) *fakeRedis {
	f := &fakeRedis{ln: ln, replies: replies, holdCmd: cmd}
	f.hold = make(chan struct{})
	var release sync.Once
	f.release = func() { release.Do(func() { close(f.hold) }) }
	t.Cleanup(f.release)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

// count returns how many commands named name the fake has read.
func (f *fakeRedis) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.cmds {
		if c == name {
			n++
		}
	}
	return n
}

func (f *fakeRedis) serve(c net.Conn) {
	n := f.open.Add(1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	defer f.open.Add(-1)
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		cmd, err := readRedisReply(r, 0) // a command is a RESP array of bulk strings
		if err != nil || len(cmd.arr) == 0 {
			return
		}
		name := cmd.arr[0].str
		f.mu.Lock()
		f.cmds = append(f.cmds, name)
		f.mu.Unlock()
		if name == f.holdCmd {
			<-f.hold
		}
		reply, ok := f.replies[name]
		if !ok {
			reply = "+OK\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// TestSharedTierMalformedReply: a reply to MGET that is not two values is a failed read: the IdP
// decides, and its answer is not written, as after any failed read.
func TestSharedTierMalformedReply(t *testing.T) {
	// One value for two keys: no real Redis sends it.
	fake := startFakeRedis(t, map[string]string{"MGET": "*1\r\n$-1\r\n"})
	idp := newRevocableIDP(t)
	h, _ := replica(t, "fake@malformed", sharedConfig(idp, fake.ln.Addr().String(), nil))
	logs := captureLogs(inner(h))
	expectStatus(t, send(h, bearerRequest("tok-fake")), http.StatusOK)
	fake.mu.Lock()
	got := strings.Join(fake.cmds, " ")
	fake.mu.Unlock()
	if got != "MGET" {
		t.Errorf("Redis got %q, want only the MGET", got)
	}
	if !strings.Contains(logs(), "shared cache: Redis read failed") {
		t.Errorf("the malformed reply was not logged:\n%s", logs())
	}
}

// TestSharedTierWriteFailureLogged: a Redis that reads but refuses writes (out of memory, a replica
// made read-only) costs no request anything, and says so once per failed write. A marker that was
// written logs nothing.
func TestSharedTierWriteFailureLogged(t *testing.T) {
	fake := startFakeRedis(t, map[string]string{
		"MGET": "*2\r\n$-1\r\n$-1\r\n",
		"SET":  "-OOM command not allowed when used memory > 'maxmemory'\r\n",
	})
	idp := newRevocableIDP(t)
	h, _ := replica(t, "fake@readonly", sharedConfig(idp, fake.ln.Addr().String(), nil))
	logs := captureLogs(inner(h))
	expectStatus(t, send(h, bearerRequest("tok-readonly")), http.StatusOK)
	fake.mu.Lock()
	got := strings.Join(fake.cmds, " ")
	fake.mu.Unlock()
	if got != "MGET SET" {
		t.Errorf("Redis got %q, want the MGET and the entry's SET", got)
	}
	if n := strings.Count(logs(), "shared cache: Redis write failed ("); n != 1 {
		t.Errorf("one refused write logged %d times:\n%s", n, logs())
	}

	ok := startRedis(t)
	h2, _ := replica(t, "marker@written", sharedConfig(idp, ok.addr, nil))
	logs2 := captureLogs(inner(h2))
	tier := inner(h2).settings.shared
	_, marker := sharedKeys(h2, "tok-marked")
	sharedMark(inner(h2), tier, marker, time.Now(), tier.markFor)
	if strings.Contains(logs2(), "shared cache:") {
		t.Errorf("a marker that was written logged a failure:\n%s", logs2())
	}
	if v, err := redisDo(tier.client, "GET", marker); err != nil || v.null {
		t.Errorf("the marker is not in Redis: %v", err)
	}
}
