package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"crypto/tls"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchedFileReadingIsSet: while a request reads a due file, watchedFile.reading is set, so
// that the others use the accepted content instead of reading too (a poll while it is set is
// TestWatchedFileOneReaderAtATime's).
func TestWatchedFileReadingIsSet(t *testing.T) {
	path := writeTemp(t, t.TempDir(), "secret", "old-secret\n")
	w, err := openWatched(path, maxSecretFileBytes, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeInPlace(t, path, "new-secret\n")

	// A read takes microseconds, so the flag is looked for while one poll after another reads, up
	// to a deadline. Once it is seen, under the lock, the reader cannot finish until the lock is
	// released: it is between pollFile's lock and rereadFile's.
	deadline := time.Now().Add(10 * time.Second)
	seen := false
	for !seen && time.Now().Before(deadline) {
		checkNow(w)
		done := make(chan struct{})
		go func() {
			pollFile(w, time.Now())
			close(done)
		}()
		if seen = readingSeen(w, done); seen {
			w.mu.Unlock()
		}
		<-done
	}
	if !seen {
		t.Fatal("no poll was seen reading with watchedFile.reading set")
	}
}

// readingSeen looks for w.reading until done is closed. It returns true with w.mu held when it saw
// the flag set.
func readingSeen(w *watchedFile, done chan struct{}) bool {
	for {
		w.mu.Lock()
		if w.reading {
			return true
		}
		w.mu.Unlock()
		select {
		case <-done:
			return false
		default:
		}
	}
}

// TestTLSRebuildsOneAtATime: a rebuild of the TLS files' configuration, with its install, waits
// for the one under way (tlsSource.building), for the IdP's client and for the Redis client. The
// lock is held here as a rebuild under way would hold it.
func TestTLSRebuildsOneAtATime(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	writeInPlace(t, caFile, newTestCA(t, "first").certPEM)

	idpSource, idpConf, err := compileTLS("clientConfig.tls", TLSConfig{CA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	c := &idpClient{}
	c.tls = idpSource
	c.timeout = time.Second
	c.client = newHTTPClient(c, idpConf)
	c.conf = idpConf
	redisSource, redisConf, err := compileTLS("cache.redis.tls", TLSConfig{CA: caFile})
	if err != nil {
		t.Fatal(err)
	}
	rc := &redisClient{tlsFiles: redisSource, tls: redisConf}

	writeByRename(t, caFile, newTestCA(t, "second").certPEM)
	for _, r := range []struct {
		name      string
		src       *tlsSource
		renew     func(now time.Time)
		installed func() *tls.Config
	}{
		{"clientConfig.tls", idpSource, func(now time.Time) { renewClient(c, now) }, func() *tls.Config {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.conf
		}},
		{"cache.redis.tls", redisSource, func(now time.Time) { renewRedisTLS(rc, now) }, func() *tls.Config {
			rc.mu.Lock()
			defer rc.mu.Unlock()
			return rc.tls
		}},
	} {
		old := r.installed()
		now := takeChange(t, r.src)
		r.src.building.Lock()
		started, done := make(chan struct{}), make(chan struct{})
		go func() {
			close(started)
			r.renew(now)
			close(done)
		}()
		<-started
		// What is checked here must not happen at all: a rebuild without the lock ends within a
		// millisecond or so, and the wait only bounds how long the test gives it to show.
		select {
		case <-done:
			t.Fatalf("%s: a rebuild ended while another held tlsSource.building", r.name)
		case <-time.After(200 * time.Millisecond):
		}
		if r.installed() != old {
			t.Fatalf("%s: a configuration was installed while another rebuild held the lock", r.name)
		}
		r.src.building.Unlock()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the rebuild did not end once the lock was free", r.name)
		}
		if r.installed() == old {
			t.Fatalf("%s: the new CA was not installed", r.name)
		}
	}
}

// takeChange reads src's files twice, a confirming read apart, so that the change written to them
// is taken, and returns the time of the second read.
func takeChange(t *testing.T, src *tlsSource) time.Time {
	t.Helper()
	now := time.Now()
	for round := 0; round < 2; round++ {
		for _, f := range src.files {
			checkNow(f.file)
		}
		now = now.Add(time.Second)
		if changed := pollTLS(src, now); changed != (round == 1) {
			t.Fatalf("read %d of the change: changed %v", round+1, changed)
		}
	}
	return now
}
