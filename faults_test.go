package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// Every way an introspection endpoint can fail, one case each, against timeoutSeconds 1 and
// maxRetries 2. Each case checks that the request fails closed with the README's status, how many
// attempts reached the IdP, that the whole call stays within timeoutSeconds, that no goroutine is
// left behind, and that nothing the IdP said reaches the client or the log.

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// idpSecret is put in every body a misbehaving IdP sends: it must reach neither a client nor a log.
const idpSecret = "IDP-SECRET-DETAIL"

// faultToken is the client's token in the fault tests: it must never reach a log.
const faultToken = "FAULT-TOKEN-7c1e"

// faultMargin is what a loaded 2-core machine, the race detector and the interpreter may add to
// timeoutSeconds. It is below timeoutSeconds, so a client that gave each attempt its own timeout
// (3 attempts × 1 s) or slept out a Retry-After past the deadline fails the bound.
const faultMargin = 900 * time.Millisecond

// faultIDP is an introspection endpoint that misbehaves in one way. It counts the attempts it saw:
// requests, or accepted connections for connection-level faults.
type faultIDP struct {
	url      string
	mu       sync.Mutex
	attempts int  // -1 when the fault cannot see attempts (nothing listens)
	leaked   bool // a request reached a place the token must never go
	stops    []func()
}

func (f *faultIDP) hit() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts++
	return f.attempts
}

func (f *faultIDP) seen() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

func (f *faultIDP) sawLeak() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leaked
}

// close stops every server and listener of the fault and waits for their goroutines. It may be
// called more than once.
func (f *faultIDP) close() {
	f.mu.Lock()
	stops := f.stops
	f.stops = nil
	f.mu.Unlock()
	for _, stop := range stops {
		stop()
	}
}

func (f *faultIDP) onClose(stop func()) {
	f.mu.Lock()
	f.stops = append(f.stops, stop)
	f.mu.Unlock()
}

// httpFault is an IdP made of an HTTP handler that answers attempt number n.
func httpFault(answer func(w http.ResponseWriter, r *http.Request, n int)) func(t *testing.T) *faultIDP {
	return func(t *testing.T) *faultIDP {
		f := &faultIDP{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := f.hit()
			_, _ = io.Copy(io.Discard, r.Body)
			answer(w, r, n)
		}))
		f.url = srv.URL + "/introspect"
		f.onClose(func() { srv.Close() })
		t.Cleanup(func() { f.close() })
		return f
	}
}

// rawFault is an IdP that accepts TCP connections and then either holds them, never reading or
// writing (hang), or closes them at once.
func rawFault(hang bool) func(t *testing.T) *faultIDP {
	return func(t *testing.T) *faultIDP {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f := &faultIDP{url: "http://" + l.Addr().String() + "/introspect"}
		var connsMu sync.Mutex
		var conns []net.Conn
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				f.hit()
				if !hang {
					c.Close()
					continue
				}
				connsMu.Lock()
				conns = append(conns, c)
				connsMu.Unlock()
			}
		}()
		f.onClose(func() {
			l.Close()
			<-done
			connsMu.Lock()
			for _, c := range conns {
				c.Close()
			}
			connsMu.Unlock()
		})
		t.Cleanup(func() { f.close() })
		return f
	}
}

// refusedFault is an address nothing listens on.
func refusedFault(t *testing.T) *faultIDP {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return &faultIDP{url: "http://" + addr + "/introspect", attempts: -1}
}

// redirectFault redirects with status to a second server, which must never be called: a followed
// 307 or 308 would send it the token.
func redirectFault(status int) func(t *testing.T) *faultIDP {
	return func(t *testing.T) *faultIDP {
		f := &faultIDP{}
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			f.leaked = true
			f.mu.Unlock()
			answerJSON(`{"active":true,"grp":"admin"}`)(w, r, 0)
		}))
		f.onClose(func() { target.Close() })
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.hit()
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Location", target.URL+"/introspect")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, idpSecret)
		}))
		f.onClose(func() { srv.Close() })
		f.url = srv.URL + "/introspect"
		t.Cleanup(func() { f.close() })
		return f
	}
}

// waitOrDone waits for d and reports true, or reports false as soon as ctx ends.
func waitOrDone(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	return firstReady(timer.C, ctx.Done())
}

// faultStatus answers status with a body that holds idpSecret, and headers kv (name, value, ...).
func faultStatus(status int, kv ...string) func(w http.ResponseWriter, r *http.Request, n int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":"server_error","error_description":"`+idpSecret+`"}`)
	}
}

// slowHeaders answers a valid active answer, but only after longer than the timeout.
func slowHeaders(w http.ResponseWriter, r *http.Request, _ int) {
	if waitOrDone(r.Context(), 2500*time.Millisecond) {
		answerJSON(`{"active":true,"grp":"admin"}`)(w, r, 0)
	}
}

// trickle sends a valid active answer one byte every 100 ms: about 5 s in all.
func trickle(w http.ResponseWriter, r *http.Request, _ int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	body := `{"active":true,"grp":"admin","exp":4102444800,"note":"` + idpSecret + `"}`
	flusher, _ := w.(http.Flusher)
	for i := 0; i < len(body); i++ {
		if _, err := w.Write([]byte{body[i]}); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		if !waitOrDone(r.Context(), 100*time.Millisecond) {
			return
		}
	}
}

func TestIdPFaults(t *testing.T) {
	past := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	big := `{"active":true,"grp":"admin","pad":"` + strings.Repeat(idpSecret, (1<<20)/len(idpSecret)+1) + `"}`
	testCases := []struct {
		desc          string
		idp           func(t *testing.T) *faultIDP
		timeout       int // clientConfig.timeoutSeconds; 1 when zero
		wantStatus    int
		wantChallenge string
		wantAttempts  int
		minLatency    time.Duration // how long the fault must have been waited for
	}{
		{
			desc: "connection refused: retried, 503", idp: refusedFault,
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 3,
		},
		{
			desc: "connection closed at once: retried, 503", idp: rawFault(false),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 3,
		},
		{
			desc: "accept then hang: one attempt cut by the timeout, 503", idp: rawFault(true),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1, minLatency: time.Second,
		},
		{
			desc: "headers later than the timeout: 503", idp: httpFault(slowHeaders),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1, minLatency: time.Second,
		},
		{
			desc: "body trickling past the timeout: 503", idp: httpFault(trickle),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1, minLatency: time.Second,
		},
		{
			desc: "500: retried, 503", idp: httpFault(faultStatus(http.StatusInternalServerError)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 3,
		},
		{
			desc: "502: retried, 503", idp: httpFault(faultStatus(http.StatusBadGateway)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 3,
		},
		{
			desc: "503: retried, 503", idp: httpFault(faultStatus(http.StatusServiceUnavailable)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 3,
		},
		{
			desc: "429 without Retry-After: retried with backoff, 503", idp: httpFault(faultStatus(http.StatusTooManyRequests)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 3,
		},
		{
			// The wait would not fit in the 1 s budget, so the client gives up at once.
			desc: "429 Retry-After 1 with timeoutSeconds 1: not waited for, 503", idp: httpFault(faultStatus(http.StatusTooManyRequests, "Retry-After", "1")),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			// With a 2 s budget one wait of 1 s fits, a second does not.
			desc: "429 Retry-After 1 with timeoutSeconds 2: honoured once, 503", idp: httpFault(faultStatus(http.StatusTooManyRequests, "Retry-After", "1")),
			timeout: 2, wantStatus: http.StatusServiceUnavailable, wantAttempts: 2, minLatency: time.Second,
		},
		{
			desc: "429 Retry-After 3600: never waited for, 503", idp: httpFault(faultStatus(http.StatusTooManyRequests, "Retry-After", "3600")),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "302 redirect: not followed, 503", idp: redirectFault(http.StatusFound),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "307 redirect (would resend the token): not followed, 503", idp: redirectFault(http.StatusTemporaryRedirect),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "308 redirect: not followed, 503", idp: redirectFault(http.StatusPermanentRedirect),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "non-JSON: 503", idp: httpFault(answerJSON(`<html>` + idpSecret + `</html>`)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "JSON null: 503", idp: httpFault(answerJSON(`null`)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "JSON array: 503", idp: httpFault(answerJSON(`[{"active":true},"` + idpSecret + `"]`)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "JSON string: 503", idp: httpFault(answerJSON(`"` + idpSecret + `"`)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "body over 1 MiB: 503", idp: httpFault(answerJSON(big)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: "wrong Content-Type: 503", idp: httpFault(answerWithType("text/html", `{"active":true,"grp":"admin","note":"`+idpSecret+`"}`)),
			wantStatus: http.StatusServiceUnavailable, wantAttempts: 1,
		},
		{
			desc: `active as the string "true": 401`, idp: httpFault(answerJSON(`{"active":"true","grp":"admin","note":"` + idpSecret + `"}`)),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantAttempts: 1,
		},
		{
			desc: "active as 1: 401", idp: httpFault(answerJSON(`{"active":1,"grp":"admin"}`)),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantAttempts: 1,
		},
		{
			desc: "active missing: 401", idp: httpFault(answerJSON(`{"grp":"admin","exp":` + future + `}`)),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantAttempts: 1,
		},
		{
			desc: "exp in the past: 401", idp: httpFault(answerJSON(`{"active":true,"grp":"admin","exp":` + past + `}`)),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantAttempts: 1,
		},
		{
			desc: "nbf in the future: 401", idp: httpFault(answerJSON(`{"active":true,"grp":"admin","nbf":` + future + `}`)),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantAttempts: 1,
		},
		{
			// 1e19 is past the int64 range: converted as is, it becomes math.MinInt64 on amd64
			// ("valid since forever"). It is in the future, so the token is not valid yet.
			desc: "nbf beyond the int64 range: 401", idp: httpFault(answerJSON(`{"active":true,"grp":"admin","nbf":1e19}`)),
			wantStatus: http.StatusUnauthorized, wantChallenge: challengeInvalidToken, wantAttempts: 1,
		},
	}
	for _, test := range testCases {
		test := test
		t.Run(test.desc, func(t *testing.T) {
			baseline := runtime.NumGoroutine()
			idp := test.idp(t)
			timeout := test.timeout
			if timeout == 0 {
				timeout = 1
			}
			cfg := bearerConfig(idp.url)
			cfg.ClientConfig.TimeoutSeconds = timeout
			cfg.ClientConfig.MaxRetries = 2
			cfg.Cache.TTLSeconds = 0
			cfg.ForwardHeaders = map[string]string{"Group": "grp"}
			up := &upstream{}
			h, err := New(context.Background(), up, cfg, "fault-"+test.desc+"@test")
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			m := h.(*middleware)
			logs := captureLogs(m)

			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header.Set("Authorization", "Bearer "+faultToken)
			rec := httptest.NewRecorder()
			start := time.Now()
			m.ServeHTTP(rec, req)
			elapsed := time.Since(start)
			idp.close()
			m.idp.client.CloseIdleConnections()

			if rec.Code != test.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, test.wantStatus)
			}
			expectEqual(t, "WWW-Authenticate", rec.Header().Get("WWW-Authenticate"), test.wantChallenge)
			expectEqual(t, "Cache-Control", rec.Header().Get("Cache-Control"), "no-store")
			expectEqual(t, "body", strings.TrimSpace(rec.Body.String()), http.StatusText(test.wantStatus))
			if _, hits := up.seen(); hits != 0 {
				t.Errorf("the request reached the upstream")
			}
			if n := idp.seen(); n >= 0 && n != test.wantAttempts {
				t.Errorf("IdP attempts = %d, want %d", n, test.wantAttempts)
			}
			if idp.sawLeak() {
				t.Errorf("the redirect target received the introspection request (and the token)")
			}
			if test.wantStatus == http.StatusServiceUnavailable {
				// The error line counts the attempts, which is all a refused connection shows.
				if want := "(attempts: " + strconv.Itoa(test.wantAttempts) + ")"; !strings.Contains(logs(), want) {
					t.Errorf("the log does not say %s:\n%s", want, logs())
				}
			}
			if strings.Contains(logs(), idpSecret) || strings.Contains(logs(), faultToken) {
				t.Errorf("the log holds IdP body text or the token:\n%s", logs())
			}
			limit := time.Duration(timeout)*time.Second + faultMargin
			if elapsed > limit {
				t.Errorf("took %v, more than timeoutSeconds + margin (%v)", elapsed, limit)
			}
			if elapsed < test.minLatency {
				t.Errorf("took %v, less than the %v the fault must have been waited for", elapsed, test.minLatency)
			}
			t.Logf("%v (attempts seen by the IdP: %d; -1 when it cannot see them)", elapsed.Round(time.Millisecond), idp.seen())
			expectGoroutinesBackTo(t, baseline)
		})
	}
}
