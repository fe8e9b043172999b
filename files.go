package oauthintrospection

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// fileRecheck is how often, at most, a file the configuration names is read again. It is read
	// from the request path, when the IdP is about to be called: New starts no goroutine.
	fileRecheck = 5 * time.Second
	// fileConfirm is how soon a file changed in place is read again, to confirm the change.
	fileConfirm = time.Second
	// maxPEMFileBytes caps a CA bundle, certificate or key file.
	maxPEMFileBytes = 256 << 10
)

// fileDigest is the SHA-256 of a file's content.
type fileDigest = [sha256.Size]byte

// watchedFile is a file named by the configuration, such as a client secret, a private key or a CA
// bundle, that may be rotated while Traefik runs. A change is told by content (a SHA-256 of what
// was read), never by size and modification time, which a writer can keep (cp -p, rsync, tar).
//
// A change is taken once a second read, fileConfirm later, agrees with the first, so that a writer
// caught halfway is not: one that truncates and then writes, and also one that removes the file
// and writes a new one (install, cp --remove-destination) or swaps a symlink to a file it is still
// writing. Only one request reads at a time, and never with the lock held: the others go on with
// the accepted content.
type watchedFile struct {
	path     string
	limit    int64
	interval time.Duration // fileRecheck; tests shorten it
	confirm  time.Duration // fileConfirm

	mu sync.Mutex
	// Guarded by mu.
	content   []byte
	digest    fileDigest
	candidate fileDigest // the digest of a change, seen once
	nextCheck time.Time
	readAt    time.Time // the last read's, for settledSince
	reading   bool
	problem   string // the last problem met, until takeProblem
	// notice, when not nil, is raised with every problem recorded, so that the one who takes the
	// problems looks only when there is one (set once, in New: watchProblems).
	notice *atomic.Bool
}

// namedFile is a re-read file and the option that names it, for the log.
type namedFile struct {
	field string
	file  *watchedFile
}

// openWatched reads the file at path for New. The error names the kind of problem, never the path
// or the content: a secret put in a field that expects a path would otherwise reach the log.
func openWatched(path string, limit int64, now time.Time) (*watchedFile, error) {
	content, err := readLimited(path, limit)
	if err != nil {
		return nil, err
	}
	return &watchedFile{
		path: path, limit: limit, interval: fileRecheck, confirm: fileConfirm,
		content: content, digest: sha256.Sum256(content), nextCheck: now.Add(fileRecheck),
	}, nil
}

// pollFile reads the file again when its time has come, and returns the new content when a change is
// taken. Otherwise it returns nil. It runs on every introspection and is almost always not due, so
// the reading is apart (rereadFile): under Yaegi a call pays for the frame slots of every branch of
// its function, taken or not (docs/development.md, interpreter costs).
func pollFile(w *watchedFile, now time.Time) []byte {
	w.mu.Lock()
	due := !w.reading && !now.Before(w.nextCheck)
	w.reading = w.reading || due
	w.mu.Unlock()
	if !due {
		return nil
	}
	return rereadFile(w, now)
}

// rereadFile reads the file for pollFile, which has set w.reading, and takes a change once the
// same new content has been read twice, fileConfirm apart (a file being written is not taken).
func rereadFile(w *watchedFile, now time.Time) []byte {
	content, err := readLimited(w.path, w.limit)

	w.mu.Lock()
	defer w.mu.Unlock()
	w.reading = false
	w.nextCheck = now.Add(w.interval)
	w.readAt = now
	if err != nil {
		// A change seen before is forgotten: the file must be read whole twice again, and no
		// mismatch waits on a change that may never be confirmed (settledSince).
		w.candidate = fileDigest{}
		noteProblem(w, err.Error())
		return nil
	}
	digest := sha256.Sum256(content)
	switch {
	case digest == w.digest:
		w.candidate = fileDigest{}
		return nil
	case digest != w.candidate:
		w.candidate = digest
		w.nextCheck = now.Add(w.confirm)
		return nil
	}
	w.content = content
	w.digest = digest
	w.candidate = fileDigest{}
	return content
}

// acceptedDigest returns the digest of the content taken last.
func acceptedDigest(w *watchedFile) fileDigest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.digest
}

// settledSince reports whether w has been read after at, still holds the content of digest, and
// has no change waiting for its confirming read.
func settledSince(w *watchedFile, at time.Time, digest fileDigest) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.candidate == fileDigest{} && w.digest == digest && w.readAt.After(at)
}

// acceptedContent returns the content taken last.
func acceptedContent(w *watchedFile) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.content
}

// readLimited reads the regular file at path, at most limit bytes. Anything but a regular file is
// refused, and a FIFO never blocks the reader: it is refused before it is opened, and opened
// without waiting for a writer should it replace the file in between.
func readLimited(path string, limit int64) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fileProblem(err)
	}
	if !info.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, info, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info.Size() > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	content, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, errors.New("the file cannot be read")
	}
	if int64(len(content)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return content, nil
}

// openRegular opens path without waiting for a writer, should it be a FIFO, and refuses anything
// but a regular file once it is open: the file may have been replaced since readLimited's Stat,
// and a FIFO without a writer would read as empty.
func openRegular(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|nonblocking(), 0)
	if err != nil {
		return nil, nil, fileProblem(err)
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, errors.New("not a regular file")
	}
	return f, info, nil
}

// nonblocking is the system's O_NONBLOCK, with which opening a FIFO returns at once instead of
// waiting for a writer. The interpreter has no syscall package, so the values are written here;
// elsewhere the Stat before the open is the only guard.
func nonblocking() int {
	switch runtime.GOOS {
	case "linux":
		if strings.HasPrefix(runtime.GOARCH, "mips") {
			return 0x80
		}
		return 0x800
	case "darwin", "freebsd", "netbsd", "openbsd", "dragonfly":
		return 0x4
	}
	return 0
}

// fileProblem names the kind of an error from opening a file. os errors quote the path.
func fileProblem(err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return errors.New("no such file")
	case errors.Is(err, os.ErrPermission):
		return errors.New("permission denied")
	}
	return errors.New("the file cannot be read")
}
