package oauthintrospection

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// redisClient speaks RESP2 (the Redis serialization protocol) over net, since Yaegi loads nothing
// but the standard library. It keeps a small pool of idle connections, opened on the request path
// when one is needed (nothing dials in New), each authenticated (AUTH) and on its database
// (SELECT). Endpoints are tried in order: the first that answers serves.
//
// It has a breaker of its own: after redisFailuresToOpen consecutive failures it is skipped for
// redisOpenFor, then one call probes; so during a Redis outage a miss costs one IdP call, not a
// Redis timeout first.
type redisClient struct {
	endpoints []string
	username  string
	password  func() string // inline, or re-read from passwordFile
	database  int
	tlsFiles  *tlsSource // nil: plain TCP; its files are re-read (redisTLS)
	timeout   time.Duration
	// passwordFile is the file password re-reads, nil for an inline password; watched is set when
	// it or tlsFiles is there, whose problems a lookup then takes (redisFileProblems).
	passwordFile *watchedFile
	watched      bool

	// busy holds a slot for each command in flight, so that the client has at most redisMaxBusy
	// connections in use and redisMaxIdle more idle. busyV and slotV are busy and its element
	// for reflect (sendWithin).
	busy  chan struct{}
	busyV reflect.Value
	slotV reflect.Value

	mu   sync.Mutex
	idle []*redisConn
	tls  *tls.Config // guarded by mu: built from tlsFiles, nil for plain TCP

	failures  atomic.Int32
	skipUntil atomic.Int64 // Unix nanoseconds; while in the future, every call fails at once
}

// redisConn is one connection with its read buffer, and the TLS configuration it was opened with.
type redisConn struct {
	c    net.Conn
	r    *bufio.Reader
	conf *tls.Config
}

const (
	redisMaxIdle = 16
	// redisMaxBusy bounds the lookups and entry writes in flight on one client (revocation markers
	// are bounded by the revocation slots instead). A lookup runs on every local miss,
	// before the IdP's in-flight bound, so without it a flood of made-up tokens would open a
	// connection each and use up the maxclients that every replica shares.
	redisMaxBusy        = 32
	redisFailuresToOpen = 3
	redisOpenFor        = time.Second
	redisMaxBulk        = 1 << 20 // a cached answer is at most maxResponseBytes of JSON
	// redisMaxArray bounds an array reply. The longest the plugin asks for is MGET's two values
	// (an answer and its marker).
	redisMaxArray = 16
	// redisBulkUpFront is the most of a bulk string allocated before its bytes arrive; a longer
	// one grows as they do, so a peer that claims 1 MiB and sends nothing costs little.
	redisBulkUpFront = 4 << 10
)

// errRedisNil is the nil reply: a key that does not exist.
var errRedisNil = errors.New("redis: nil")

// errRedisSkipped is a call not made because the client's breaker is open.
var errRedisSkipped = errors.New("redis: skipped after consecutive failures")

// errRedisBusy is a call not made because redisMaxBusy lookups and entry writes held the client's
// connections for half of its timeout. It says nothing of Redis's health, so the breaker does not count it.
var errRedisBusy = errors.New("redis: every connection busy")

// newRedisClient makes a client of endpoints, without a password; it dials nothing.
func newRedisClient(endpoints []string, timeout time.Duration) *redisClient {
	busy := make(chan struct{}, redisMaxBusy)
	rc := &redisClient{endpoints: endpoints, timeout: timeout, busy: busy, busyV: reflect.ValueOf(busy), slotV: reflect.ValueOf(struct{}{})}
	rc.password = func() string { return "" }
	return rc
}

// redisReply is one RESP value: str for simple strings and bulk strings, n for integers, arr for
// arrays; null for a nil bulk string or array.
type redisReply struct {
	str  string
	n    int64
	arr  []redisReply
	null bool
}

// redisDo runs one command within the client's timeout, on a pooled connection or a new one. It
// waits for one of the busy slots first, for at most half the timeout: the other half is the
// command's.
func redisDo(rc *redisClient, args ...string) (redisReply, error) {
	if until := rc.skipUntil.Load(); until != 0 {
		now := time.Now()
		// Open: skip. Past the open time, one call is the probe (it pushes the time on for the
		// others), as in the IdP's breaker: the others do not all pay a timeout at once.
		if now.UnixNano() < until || !rc.skipUntil.CompareAndSwap(until, now.Add(redisOpenFor).UnixNano()) {
			return redisReply{}, errRedisSkipped
		}
	}
	deadline := time.Now().Add(rc.timeout)
	if !sendWithin(rc.busyV, rc.slotV, rc.timeout/2, deadline) {
		return redisReply{}, errRedisBusy
	}
	defer func() { <-rc.busy }()
	return redisCall(rc, deadline, args...)
}

// redisCall runs one command as redisDo does, but whatever the client's breaker says and without
// a busy slot, and counts its outcome for the breaker. Only revocation markers (sharedMark) call it
// directly: a flood of lookups that holds every busy slot must not keep a marker out, and the
// revocation slots already bound them.
func redisCall(rc *redisClient, deadline time.Time, args ...string) (redisReply, error) {
	reply, err := redisTry(rc, deadline, args)
	if err != nil && !isRedisReplyError(err) {
		if rc.failures.Add(1) >= redisFailuresToOpen {
			rc.skipUntil.Store(time.Now().Add(redisOpenFor).UnixNano())
		}
		return reply, err
	}
	rc.failures.Store(0)
	rc.skipUntil.Store(0)
	return reply, err
}

// redisTry sends args on one connection and reads the reply. A connection that failed is closed;
// one that answered goes back to the pool.
func redisTry(rc *redisClient, deadline time.Time, args []string) (redisReply, error) {
	conn, err := redisConnFor(rc, deadline)
	if err != nil {
		return redisReply{}, err
	}
	if err = conn.c.SetDeadline(deadline); err == nil {
		if _, err = conn.c.Write(redisCommand(args)); err == nil {
			var reply redisReply
			if reply, err = readRedisReply(conn.r, 0); err == nil || isRedisReplyError(err) {
				redisRelease(rc, conn)
				return reply, err
			}
		}
	}
	_ = conn.c.Close()
	return redisReply{}, err
}

// redisConnFor takes an idle connection, or opens one.
func redisConnFor(rc *redisClient, deadline time.Time) (*redisConn, error) {
	conf := redisTLS(rc, time.Now())
	rc.mu.Lock()
	if n := len(rc.idle); n > 0 {
		conn := rc.idle[n-1]
		rc.idle = rc.idle[:n-1]
		rc.mu.Unlock()
		return conn, nil
	}
	rc.mu.Unlock()
	var lastErr error
	for _, addr := range rc.endpoints {
		conn, err := redisDial(rc, addr, conf, deadline)
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// redisTLS returns the TLS configuration of new connections. When the files of cache.redis.tls
// have changed (tlsSource, as for clientConfig.tls), it is built again and the idle connections
// of the old one are closed: a CA taken out of the file must stop being trusted, and a rotated
// client certificate must be the one presented.
func redisTLS(rc *redisClient, now time.Time) *tls.Config {
	if rc.tlsFiles != nil && pollTLS(rc.tlsFiles, now) {
		renewRedisTLS(rc, now)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.tls
}

// renewRedisTLS installs the configuration the TLS files now make, if they make one, and closes
// the idle connections of the old one.
func renewRedisTLS(rc *redisClient, now time.Time) {
	rc.tlsFiles.building.Lock()
	defer rc.tlsFiles.building.Unlock()
	conf := rebuildTLS(rc.tlsFiles, now)
	if conf == nil {
		return
	}
	rc.mu.Lock()
	rc.tls = conf
	idle := rc.idle
	rc.idle = nil
	rc.mu.Unlock()
	for _, conn := range idle {
		_ = conn.c.Close()
	}
}

// redisDial opens a connection to addr: TCP, TLS with conf if configured, then AUTH and SELECT.
func redisDial(rc *redisClient, addr string, conf *tls.Config, deadline time.Time) (*redisConn, error) {
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	opened := conf
	if conf != nil {
		conf = conf.Clone()
		if conf.ServerName == "" {
			if host, _, splitErr := net.SplitHostPort(addr); splitErr == nil {
				conf.ServerName = host
			}
		}
		tc := tls.Client(c, conf)
		_ = tc.SetDeadline(deadline)
		if err = tc.Handshake(); err != nil {
			_ = c.Close()
			return nil, err
		}
		c = tc
	}
	conn := &redisConn{c: c, r: bufio.NewReader(c), conf: opened}
	if err = redisHello(rc, conn, deadline); err != nil {
		_ = c.Close()
		return nil, err
	}
	return conn, nil
}

// redisHello authenticates the connection and selects the database.
func redisHello(rc *redisClient, conn *redisConn, deadline time.Time) error {
	if err := conn.c.SetDeadline(deadline); err != nil {
		return err
	}
	password := rc.password()
	var setup [][]string
	switch {
	case rc.username != "":
		setup = append(setup, []string{"AUTH", rc.username, password})
	case password != "":
		setup = append(setup, []string{"AUTH", password})
	}
	if rc.database != 0 {
		setup = append(setup, []string{"SELECT", strconv.Itoa(rc.database)})
	}
	for _, args := range setup {
		if _, err := conn.c.Write(redisCommand(args)); err != nil {
			return err
		}
		if _, err := readRedisReply(conn.r, 0); err != nil {
			return errors.New("redis " + args[0] + ": " + err.Error())
		}
	}
	return nil
}

// redisRelease returns a healthy connection to the pool, or closes it when the pool is full or
// the TLS configuration it was opened with has been replaced.
func redisRelease(rc *redisClient, conn *redisConn) {
	rc.mu.Lock()
	if len(rc.idle) < redisMaxIdle && conn.conf == rc.tls {
		rc.idle = append(rc.idle, conn)
		rc.mu.Unlock()
		return
	}
	rc.mu.Unlock()
	_ = conn.c.Close()
}

// redisCommand encodes args as a RESP array of bulk strings.
func redisCommand(args []string) []byte {
	b := make([]byte, 0, 64)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// redisReplyError is an error reply of the server (-ERR ...): the connection is still good.
type redisReplyError struct{ msg string }

func (e *redisReplyError) Error() string { return "redis: " + e.msg }

func isRedisReplyError(err error) bool {
	_, ok := err.(*redisReplyError)
	return ok
}

// readRedisReply reads one RESP2 value. An array is at most redisMaxArray values and holds no
// array (MGET's reply is one array of bulk strings); a bulk string is at most redisMaxBulk bytes.
func readRedisReply(r *bufio.Reader, depth int) (redisReply, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return redisReply{}, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return redisReply{}, errors.New("redis: malformed reply")
	}
	kind, body := line[0], string(line[1:len(line)-2])
	switch kind {
	case '+':
		return redisReply{str: body}, nil
	case '-':
		return redisReply{}, &redisReplyError{msg: body}
	case ':':
		n, err := strconv.ParseInt(body, 10, 64)
		return redisReply{n: n}, err
	case '$':
		return readRedisBulk(r, body)
	case '*':
		return readRedisArray(r, body, depth)
	}
	return redisReply{}, errors.New("redis: unknown reply type")
}

func readRedisBulk(r *bufio.Reader, size string) (redisReply, error) {
	n, err := strconv.Atoi(size)
	if err != nil || n > redisMaxBulk {
		return redisReply{}, errors.New("redis: bad bulk length")
	}
	if n < 0 {
		return redisReply{null: true}, nil
	}
	upFront := n + 2
	if upFront > redisBulkUpFront {
		upFront = redisBulkUpFront
	}
	buf, err := readN(r, make([]byte, 0, upFront), n+2)
	if err != nil {
		return redisReply{}, err
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return redisReply{}, errors.New("redis: malformed reply")
	}
	return redisReply{str: string(buf[:n])}, nil
}

func readRedisArray(r *bufio.Reader, size string, depth int) (redisReply, error) {
	n, err := strconv.Atoi(size)
	if err != nil || n > redisMaxArray || depth > 0 {
		return redisReply{}, errors.New("redis: bad array")
	}
	if n < 0 {
		return redisReply{null: true}, nil
	}
	// Every element is read, error replies included (a proxy may send one for a failed shard):
	// a reply left half read would answer the next command on the connection.
	out := redisReply{arr: make([]redisReply, n)}
	var replyErr error
	for i := range out.arr {
		if out.arr[i], err = readRedisReply(r, depth+1); err != nil {
			if !isRedisReplyError(err) {
				return redisReply{}, err
			}
			if replyErr == nil {
				replyErr = err
			}
		}
	}
	if replyErr != nil {
		return redisReply{}, replyErr
	}
	return out, nil
}

// readN appends n bytes of r to buf, growing it only as the bytes arrive.
func readN(r *bufio.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // append's growth, bounded by what has arrived
		}
		end := cap(buf)
		if end > n {
			end = n
		}
		m, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+m]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}
