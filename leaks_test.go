package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// Leaks of every kind: races between requests and reloads, goroutines and memory kept by
// repeated New calls, and secrets in the log.

import (
	"context"
	"encoding/json"
	"fmt"
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

// reloadConfig is one of two configurations that alternate under one middleware name, as a
// dynamic-configuration reload that changes the middleware does. Both let an active admin through.
func reloadConfig(idpURL string, generation int) *Config {
	cfg := bearerConfig(idpURL)
	cfg.ClientConfig.TimeoutSeconds = 30 // a loaded machine must not turn a slow answer into a 503
	cfg.ForwardHeaders = map[string]string{"Group": "grp"}
	if generation%2 == 0 {
		cfg.Claims = "Equals(`grp`, `admin`)"
		cfg.Cache.TTLSeconds = 30
	} else {
		cfg.UsernameClaim = "sub"
		cfg.Cache.TTLSeconds = 60
		cfg.Cache.NegativeTTLSeconds = 30
	}
	return cfg
}

// validOrNot answers an active admin for tokens that start with "valid", inactive otherwise.
func validOrNot(w http.ResponseWriter, r *http.Request, call int) {
	if strings.HasPrefix(r.PostForm.Get("token"), "valid") {
		answerJSON(`{"active":true,"grp":"admin","sub":"alice","exp":`+futureExp()+`}`)(w, r, call)
		return
	}
	answerJSON(`{"active":false}`)(w, r, call)
}

// TestConcurrentServeAndReload serves from many goroutines, with the cache and coalescing on, while
// another goroutine calls New again and again with the same name and alternating configurations,
// and hands each new handler to the next requests, as Traefik does on reloads. Run it with -race.
// A valid token must never be denied and an invalid one must never pass.
func TestConcurrentServeAndReload(t *testing.T) {
	workers, perWorker := 8, 200
	if interpreted {
		workers, perWorker = 8, 100
	}
	const name = "concurrent-reload@test"
	idp := newFakeIDP(t, validOrNot)
	up := &upstream{}
	var handlersMu sync.Mutex
	var handlers []*middleware // every generation, to close their idle connections at the end
	// build returns the handler as New returned it. (Under Yaegi, converting the *middleware to an
	// http.Handler again in a long-lived frame makes a method wrapper bound to that frame, which
	// the goroutines would then share: the race detector reports the interpreter's frame accesses.)
	build := func(generation int) http.Handler {
		h, err := New(context.Background(), up, reloadConfig(idp.srv.URL, generation), name)
		if err != nil {
			t.Errorf("New: %v", err)
			return nil
		}
		m := h.(*middleware)
		m.logf = func(level, msg string) {}
		handlersMu.Lock()
		handlers = append(handlers, m)
		handlersMu.Unlock()
		return h
	}
	defer func() {
		handlersMu.Lock()
		defer handlersMu.Unlock()
		for _, m := range handlers {
			m.idp.client.CloseIdleConnections()
		}
	}()
	do := func(h http.Handler, token string) int {
		rec := send(h, bearerRequest(token))
		return rec.Code
	}
	// request j of worker w: the token and the only acceptable answer. Tokens of the same round are
	// shared by all workers, so that their misses coalesce.
	pick := func(w, j int) (string, int) {
		switch j % 6 {
		case 0:
			return "valid-shared", http.StatusOK
		case 1:
			return "invalid-shared", http.StatusUnauthorized
		case 2:
			return "valid-round-" + strconv.Itoa(j), http.StatusOK
		case 3:
			return "invalid-round-" + strconv.Itoa(j), http.StatusUnauthorized
		case 4:
			return "valid-own-" + strconv.Itoa(w) + "-" + strconv.Itoa(j), http.StatusOK
		}
		return "", http.StatusUnauthorized
	}

	// Warm every path once, sequentially, in both configurations: Yaegi builds some types lazily,
	// without a lock, on first use.
	var current http.Handler
	warmValid := 0
	for generation := 0; generation < 2; generation++ {
		h := build(generation)
		if h == nil {
			t.FailNow()
		}
		for j := 0; j < 12; j++ {
			tok, want := pick(99, j)
			if code := do(h, tok); code != want {
				t.Fatalf("warm-up %q: status %d, want %d", tok, code, want)
			}
			if want == http.StatusOK {
				warmValid++
			}
		}
		current = h
	}

	var mu sync.Mutex // guards current, stop, reloads and the failures
	stop := false
	reloads := 0
	var failures []string
	var wg sync.WaitGroup
	worker := func(w int) {
		defer wg.Done()
		for j := 0; j < perWorker; j++ {
			mu.Lock()
			h := current
			mu.Unlock()
			tok, want := pick(w, j)
			if code := do(h, tok); code != want {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("worker %d request %d (%q): status %d, want %d", w, j, tok, code, want))
				mu.Unlock()
			}
		}
	}
	reloaded := make(chan struct{})
	reloader := func() {
		defer close(reloaded)
		for generation := 2; ; generation++ {
			mu.Lock()
			done := stop
			mu.Unlock()
			if done {
				return
			}
			h := build(generation)
			if h == nil {
				return
			}
			mu.Lock()
			current = h
			reloads++
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // Traefik throttles reloads; this is far more often
		}
	}
	go reloader()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go worker(w)
	}
	wg.Wait()
	mu.Lock()
	stop = true
	mu.Unlock()
	<-reloaded

	for i, f := range failures {
		if i == 10 {
			t.Errorf("… %d failures in all", len(failures))
			break
		}
		t.Error(f)
	}
	valid := 0
	for w := 0; w < workers; w++ {
		for j := 0; j < perWorker; j++ {
			if _, want := pick(w, j); want == http.StatusOK {
				valid++
			}
		}
	}
	if _, hits := up.seen(); hits != valid+warmValid {
		t.Errorf("upstream hits = %d, want %d", hits, valid+warmValid)
	}
	calls, _, _ := idp.snapshot()
	t.Logf("%d requests, %d reloads, %d IdP calls", workers*perWorker, reloads, calls)
	if reloads == 0 {
		t.Errorf("no reload happened while serving")
	}
}

// TestRepeatedNewDoesNotLeak calls New 1,000 times with the same name, first with one
// configuration, then alternating two, as reloads do, and checks that neither goroutines nor memory
// grow. New starts no goroutine. The registry keeps one shared state per middleware name, and one
// shared state costs about 0.4 MiB (a cache ring of 10,000 32-byte keys and an idle transport), so
// keeping every generation would cost about 400 MiB; the 5 MiB bound allows the last generation and
// the allocator's and the interpreter's slack, and fails from about a dozen kept generations on.
func TestRepeatedNewDoesNotLeak(t *testing.T) {
	rounds := 1000
	if interpreted {
		rounds = 300 // still 30 times what the bound allows to be kept
	}
	const name = "repeated-new@test"
	idpURL := "http://127.0.0.1:1/introspect"
	next := &upstream{}
	// One round of each first, so that the registry entry of the name and anything built lazily
	// (by the runtime or the interpreter) exists before the measurement.
	for i := 0; i < 4; i++ {
		if _, err := New(context.Background(), next, reloadConfig(idpURL, i), name); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()

	var first *middleware
	for i := 0; i < rounds; i++ {
		h, err := New(context.Background(), next, reloadConfig(idpURL, 0), name)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		m := h.(*middleware)
		if first == nil {
			first = m
		} else if m.cache != first.cache || m.idp != first.idp {
			t.Fatalf("call %d: an unchanged configuration got new shared state", i)
		}
	}
	first = nil
	for i := 0; i < rounds; i++ {
		h, err := New(context.Background(), next, reloadConfig(idpURL, i), name)
		if err != nil || h == nil {
			t.Fatalf("New: %v", err)
		}
	}

	expectGoroutinesBackTo(t, baseline)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap: %d KiB before, %d KiB after %d×2 New calls (growth %d KiB)", before.HeapAlloc>>10, after.HeapAlloc>>10, rounds, growth>>10)
	// Under the harness (Yaegi's EvalTest), a frame of sharedFor captured by the http.Client's
	// CheckRedirect closure keeps the previous generation alive, one per configuration change.
	// Traefik loads plugins with Eval, where it does not happen: TestRepeatedNewTraefikPath in
	// leaks_modes_test.go checks the memory of the interpreted plugin as Traefik builds it.
	if !interpreted && growth > 5<<20 {
		t.Errorf("the heap grew by %d KiB over %d New calls", growth>>10, 2*rounds)
	}
	registryMu.Lock()
	entries := 0
	for k := range registry {
		if k == name {
			entries++
		}
	}
	registryMu.Unlock()
	if entries != 1 {
		t.Errorf("registry entries for %s = %d, want 1", name, entries)
	}
}

// logSecretIDP answers by token: "allow" is an active admin, "scope" an active user (403), "fail"
// a 500, anything else inactive. Every answer echoes the token and the X-Tenant header it got, so
// that a log line made of IdP text would leak them too.
func logSecretIDP(w http.ResponseWriter, r *http.Request, call int) {
	tok := r.PostForm.Get("token")
	echo := `"echo":"` + tok + `","tenant":"` + r.Header.Get("X-Tenant") + `","detail":"` + idpSecret + `"`
	switch {
	case strings.Contains(tok, "allow"):
		answerJSON(`{"active":true,"grp":"admin",`+echo+`}`)(w, r, call)
	case strings.Contains(tok, "scope"):
		answerJSON(`{"active":true,"grp":"user",`+echo+`}`)(w, r, call)
	case strings.Contains(tok, "fail"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"server_error",` + echo + `}`))
	case strings.Contains(tok, "refused"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"` + tok + `",` + echo + `}`))
	case strings.Contains(tok, "redirect"):
		w.Header().Set("Location", "/elsewhere?token="+tok)
		w.WriteHeader(http.StatusFound)
	case strings.Contains(tok, "html"):
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<p>" + tok + " " + idpSecret + "</p>"))
	case strings.Contains(tok, "badexp"):
		answerJSON(`{"active":true,"grp":"admin","exp":"`+tok+`",`+echo+`}`)(w, r, call)
	case strings.Contains(tok, "ctrl"):
		answerJSON(`{"active":true,"grp":"admin","note":"x\r\nX-Evil: `+tok+`",`+echo+`}`)(w, r, call)
	case strings.Contains(tok, "big"):
		answerJSON(`{"active":true,"grp":"admin","pad":"`+strings.Repeat(tok, (1<<20)/len(tok)+1)+`"}`)(w, r, call)
	default:
		answerJSON(`{"active":false,`+echo+`}`)(w, r, call)
	}
}

// Markers the log must never hold: every token and every X-Tenant-Secret value starts with one.
const (
	tokenMarker  = "LEAKTOKEN"
	tenantMarker = "LEAKTENANT"
)

// runLogSecrecy drives every outcome through handlers made by build, with tokens and header-template
// inputs that are unique markers, and checks that the log holds none of them, nor IdP text.
func runLogSecrecy(t *testing.T, build builder) {
	idp := newFakeIDP(t, logSecretIDP)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + l.Addr().String() + "/introspect"
	l.Close()
	options := func(url, tenant string) map[string]any {
		return map[string]any{
			"tokenSource": map[string]any{"header": "Authorization", "headerAuthScheme": "Bearer"},
			"clientConfig": map[string]any{
				"url": url, "timeoutSeconds": 2, "maxRetries": 1,
				"headers": map[string]any{"X-Tenant": tenant, "X-Static": "static"},
			},
			"forwardHeaders": map[string]any{"Group": "grp", "X-Note": "note"},
			"claims":         "Equals(`grp`, `admin`)",
		}
	}
	const getTenant = `{{ .Request.Header.Get "X-Tenant-Secret" }}`
	// url.URL.Parse quotes its input in its error, and text/template puts that error in its own.
	const quoteTenant = `{{ .Request.URL.Parse (.Request.Header.Get "X-Tenant-Secret") }}`
	testCases := []struct {
		desc       string
		url        string // the IdP; idp.srv.URL when empty
		template   string // the X-Tenant template; getTenant when empty
		auth       []string
		tenant     string
		wantStatus int
	}{
		{desc: "200", auth: []string{"Bearer LEAKTOKEN-allow-1"}, tenant: "LEAKTENANT-1", wantStatus: 200},
		{desc: "401 no token", tenant: "LEAKTENANT-2", wantStatus: 401},
		{desc: "401 malformed token", auth: []string{"Bearer LEAKTOKEN-allow-3 LEAKTOKEN-allow-3b"}, tenant: "LEAKTENANT-3", wantStatus: 401},
		{desc: "401 two tokens", auth: []string{"Bearer LEAKTOKEN-allow-4", "Bearer LEAKTOKEN-allow-4b"}, tenant: "LEAKTENANT-4", wantStatus: 401},
		{desc: "401 too long", auth: []string{"Bearer LEAKTOKEN-" + strings.Repeat("x", 5000)}, tenant: "LEAKTENANT-5", wantStatus: 401},
		{desc: "401 inactive", auth: []string{"Bearer LEAKTOKEN-deny-6"}, tenant: "LEAKTENANT-6", wantStatus: 401},
		{desc: "403 claims", auth: []string{"Bearer LEAKTOKEN-scope-7"}, tenant: "LEAKTENANT-7", wantStatus: 403},
		{desc: "503 IdP error", auth: []string{"Bearer LEAKTOKEN-fail-8"}, tenant: "LEAKTENANT-8", wantStatus: 503},
		{desc: "503 IdP down", url: downURL, auth: []string{"Bearer LEAKTOKEN-allow-9"}, tenant: "LEAKTENANT-9", wantStatus: 503},
		{desc: "503 rendered value with a control character", auth: []string{"Bearer LEAKTOKEN-allow-10"}, tenant: "LEAKTENANT-10\x01", wantStatus: 503},
		{desc: "503 template error that quotes its input", template: quoteTenant, auth: []string{"Bearer LEAKTOKEN-allow-11"}, tenant: "LEAKTENANT-11%zz", wantStatus: 503},
		{desc: "503 IdP refuses the request, echoing the token", auth: []string{"Bearer LEAKTOKEN-refused-12"}, tenant: "LEAKTENANT-12", wantStatus: 503},
		{desc: "503 IdP redirects with the token", auth: []string{"Bearer LEAKTOKEN-redirect-13"}, tenant: "LEAKTENANT-13", wantStatus: 503},
		{desc: "503 IdP answers HTML with the token", auth: []string{"Bearer LEAKTOKEN-html-14"}, tenant: "LEAKTENANT-14", wantStatus: 503},
		{desc: "503 malformed exp holding the token", auth: []string{"Bearer LEAKTOKEN-badexp-15"}, tenant: "LEAKTENANT-15", wantStatus: 503},
		{desc: "503 claim with a line break and the token", auth: []string{"Bearer LEAKTOKEN-ctrl-16"}, tenant: "LEAKTENANT-16", wantStatus: 503},
		{desc: "503 answer over 1 MiB of the token", auth: []string{"Bearer LEAKTOKEN-big-17"}, tenant: "LEAKTENANT-17", wantStatus: 503},
	}
	all := ""
	for i, test := range testCases {
		test := test
		name := fmt.Sprintf("logs-%d@test", i)
		t.Run(test.desc, func(t *testing.T) {
			url := test.url
			if url == "" {
				url = idp.srv.URL
			}
			tmpl := test.template
			if tmpl == "" {
				tmpl = getTenant
			}
			up := &upstream{}
			h, logs, err := build(t, up, options(url, tmpl), name)
			if err != nil {
				t.Fatalf("building the middleware: %v", err)
			}
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header["Authorization"] = test.auth
			req.Header["X-Tenant-Secret"] = []string{test.tenant}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != test.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, test.wantStatus)
			}
			if test.wantStatus == http.StatusOK {
				_, last, _ := idp.snapshot()
				expectEqual(t, "X-Tenant sent to the IdP", last.Header.Get("X-Tenant"), test.tenant)
			}
			out := logs()
			if !strings.Contains(out, "oAuthIntrospection") && !strings.Contains(out, "rejected with") && test.wantStatus != http.StatusOK {
				t.Errorf("nothing was logged: is the log captured?")
			}
			answer := rec.Body.String() + fmt.Sprint(rec.Header())
			for _, secret := range []string{tokenMarker, tenantMarker, idpSecret} {
				if strings.Contains(out, secret) {
					t.Errorf("the log holds %s:\n%s", secret, out)
				}
				if strings.Contains(answer, secret) {
					t.Errorf("the answer to the client holds %s: %s", secret, answer)
				}
			}
			all = out
		})
	}
	if all == "" {
		t.Errorf("the log is empty")
	}
}

// jsonBuilder builds the compiled handler (or the interpreted one, inside the harness) from
// options through encoding/json, which matches keys to field names case-insensitively like
// Traefik's decoder, and captures the log.
func jsonBuilder(t *testing.T, next http.Handler, options map[string]any, name string) (http.Handler, func() string, error) {
	cfg := CreateConfig()
	raw, err := json.Marshal(options)
	if err != nil {
		return nil, nil, err
	}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, nil, err
	}
	h, err := New(context.Background(), next, cfg, name)
	if err != nil {
		return nil, nil, err
	}
	return h, captureLogs(h.(*middleware)), nil
}

func TestLogSecrecy(t *testing.T) {
	runLogSecrecy(t, jsonBuilder)
}
