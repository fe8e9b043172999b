package oauthintrospection

import (
	"strings"
	"sync/atomic"
	"time"
)

// Problems met while re-reading the files the configuration names (files.go): a file that
// vanished, content that does not parse, TLS files that no longer make a configuration. The
// last good content stays in use; each problem is recorded where it is met, raises the notice of
// the client that owns the file, and is taken once and logged as an ERROR line naming the option
// (logFileProblems), by the next introspection or Redis lookup; a certificate and key that stopped
// matching wait until every file has been read again and still holds what the failed build read
// (failTLS).

// failFile records a problem with content that pollFile returned, for takeProblem.
func failFile(w *watchedFile, problem string) {
	w.mu.Lock()
	noteProblem(w, problem)
	w.mu.Unlock()
}

// noteProblem records problem, with w.mu held, and then raises the notice. A taker lowers the
// notice before it takes (idpFileProblems), so a problem recorded meanwhile raises it again: none
// is lost.
func noteProblem(w *watchedFile, problem string) {
	w.problem = problem
	if w.notice != nil {
		w.notice.Store(true)
	}
}

// takeProblem returns, once, the last problem met while reading the file again.
func takeProblem(w *watchedFile) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.problem
	w.problem = ""
	return p
}

// failTLS records why the files, of the digests before, failed to make a TLS
// configuration at now, for tlsFileProblems. A certificate and its key are each taken on its own
// confirming read (watchedFile), so a pair rotated together can be taken half at a time: the new
// certificate with the old key, for a moment. Such a mismatch is kept apart (halfway), and logged
// only once every file has been read again since, still holds what the build was made of, and has
// no change waiting (settledSince); rebuildTLS drops it when the other half comes. Any other
// problem is logged by the next taker, and drops a waiting mismatch too: the build stopped before
// it reached the pair, so what the pair is now is not known.
func failTLS(t *tlsSource, problem string, now time.Time, before []fileDigest) {
	t.mu.Lock()
	switch {
	case !halfPair(problem):
		t.problem = problem
		t.halfway = ""
	case t.halfway == "": // one that waits keeps its time: a change after it does not postpone it
		t.halfway = problem
		t.halfwayAt = now
		t.halfwayOf = before
	default:
		t.halfwayOf = before
	}
	if t.notice != nil {
		t.notice.Store(true)
	}
	t.mu.Unlock()
}

// halfPair tells a problem of a certificate and a key of different pairs (keyPairProblem).
func halfPair(problem string) bool {
	return strings.HasSuffix(problem, pairMismatch) || strings.HasSuffix(problem, pairTypeMismatch)
}

// tlsFileProblems returns, once each, the problems met while re-reading the TLS files.
func tlsFileProblems(t *tlsSource) []string {
	t.mu.Lock()
	var out []string
	if t.problem != "" {
		out = append(out, t.problem)
		t.problem = ""
	}
	halfway := t.halfway
	at := t.halfwayAt
	of := t.halfwayOf
	t.mu.Unlock()
	if halfway != "" {
		out = takeHalfway(t, out, halfway, at, of)
	}
	return takeFileProblems(out, t.files)
}

// takeHalfway appends the mismatch of a certificate and key seen at at in files of the digests of,
// and forgets it, once every TLS file has been read again since, still holds that content and has
// no change waiting: the other half of a rotation has not come. Until then the notice stays up,
// so that the next taker looks again.
func takeHalfway(t *tlsSource, out []string, halfway string, at time.Time, of []fileDigest) []string {
	for i, f := range t.files {
		if !settledSince(f.file, at, of[i]) {
			if t.notice != nil {
				t.notice.Store(true)
			}
			return out
		}
	}
	t.mu.Lock()
	if t.halfway == halfway && t.halfwayAt.Equal(at) {
		t.halfway = ""
		out = append(out, halfway)
	}
	t.mu.Unlock()
	return out
}

// takeFileProblems appends to out, once each, the problems met while re-reading files, by option
// name.
func takeFileProblems(out []string, files []namedFile) []string {
	for _, f := range files {
		if problem := takeProblem(f.file); problem != "" {
			out = append(out, f.field+": "+problem)
		}
	}
	return out
}

// watchProblems points the files of c and its TLS source at c.notice. Each New compiles files of
// its own, and only the first build of a configuration keeps them (sharedFor), so the files of a
// client are never another's.
func watchProblems(c *idpClient) {
	if c.auth != nil {
		noticeFiles(c.auth.files, &c.notice)
	}
	if c.tls != nil {
		c.tls.notice = &c.notice
		noticeFiles(c.tls.files, &c.notice)
	}
}

// noticeFiles points each of files at notice.
func noticeFiles(files []namedFile, notice *atomic.Bool) {
	for _, f := range files {
		f.file.notice = notice
	}
}

// idpFileProblems returns, once each, the problems met while re-reading the files the configuration
// names, by option name. It looks only when the notice is up, and lowers it before it takes
// (noteProblem says why none is lost).
func idpFileProblems(c *idpClient) []string {
	if !c.notice.Swap(false) {
		return nil
	}
	var out []string
	if c.auth != nil {
		out = takeFileProblems(out, c.auth.files)
	}
	if c.tls != nil {
		out = append(out, tlsFileProblems(c.tls)...)
	}
	return out
}

// redisFileProblems returns, once each, the problems met while re-reading the files of the Redis
// options, by option name: the TLS files and passwordFile.
func redisFileProblems(rc *redisClient) []string {
	var out []string
	if rc.tlsFiles != nil {
		out = tlsFileProblems(rc.tlsFiles)
	}
	if rc.passwordFile != nil {
		if p := takeProblem(rc.passwordFile); p != "" {
			out = append(out, "cache.redis.passwordFile: "+p)
		}
	}
	return out
}

// logFileProblems logs problems met while re-reading the configured files (each is taken once).
func logFileProblems(m *middleware, problems []string) {
	for _, problem := range problems {
		m.logf("error", problem+"; the last good content stays in use")
	}
}
