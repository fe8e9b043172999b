package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.
//
// The RESP client (redis.go) against a real redis-server, started by each test on loopback and
// stopped by its cleanup: commands and replies, AUTH with a password and with an ACL user,
// SELECT, TLS, and the client's own breaker during an outage. scripts/install-redis.sh installs
// the server (make test runs it).

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testRedis is a redis-server this test started.
type testRedis struct {
	addr string
	port int
	cmd  *exec.Cmd
	args []string
}

// startRedis starts redis-server on a free loopback port with args added, and waits until it
// answers. Its cleanup stops it.
func startRedis(t testing.TB, args ...string) *testRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &testRedis{addr: "127.0.0.1:" + strconv.Itoa(port), port: port, args: args}
	r.start(t)
	t.Cleanup(func() { r.stop() })
	return r
}

// start runs the server on r's port, plain or (with a tls-port argument) TLS only.
func (r *testRedis) start(t testing.TB) {
	t.Helper()
	base := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"}
	tlsOnly := false
	for _, a := range r.args {
		if a == "--tls-port" {
			tlsOnly = true
		}
	}
	if tlsOnly {
		base = append(base, "--port", "0")
	} else {
		base = append(base, "--port", strconv.Itoa(r.port))
	}
	args := append(base, r.args...)
	for i, a := range args {
		if a == "PORT" {
			args[i] = strconv.Itoa(r.port)
		}
	}
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server (scripts/install-redis.sh installs it): %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", r.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not listen on %s within 10s", r.addr)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, with the deadline above
	}
}

// stop ends the server this test started, by its PID.
func (r *testRedis) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
	r.cmd = nil
}

// testRedisClient is a client of addr with a test's timeout.
func testRedisClient(addr, password string) *redisClient {
	rc := newRedisClient([]string{addr}, time.Second)
	rc.password = func() string { return password }
	return rc
}

func expectRedis(t *testing.T, rc *redisClient, want string, args ...string) redisReply {
	t.Helper()
	reply, err := redisDo(rc, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if want != "" && reply.str != want {
		t.Fatalf("%v = %q, want %q", args, reply.str, want)
	}
	return reply
}

func TestRedisCommandsAndReplies(t *testing.T) {
	srv := startRedis(t)
	rc := testRedisClient(srv.addr, "")
	expectRedis(t, rc, "PONG", "PING")
	value := "a value with \r\n inside, and \x00 too"
	expectRedis(t, rc, "OK", "SET", "k1", value, "EX", "60")
	expectRedis(t, rc, value, "GET", "k1")
	if r := expectRedis(t, rc, "", "GET", "missing"); !r.null {
		t.Errorf("GET of a missing key: %+v, want a nil reply", r)
	}
	r := expectRedis(t, rc, "", "MGET", "k1", "missing")
	if len(r.arr) != 2 || r.arr[0].str != value || !r.arr[1].null {
		t.Errorf("MGET = %+v", r)
	}
	if r := expectRedis(t, rc, "", "DEL", "k1", "missing"); r.n != 1 {
		t.Errorf("DEL = %d, want 1", r.n)
	}
	// An error reply is the server's answer: the connection stays good, and the breaker closed.
	for i := 0; i < redisFailuresToOpen+1; i++ {
		if _, err := redisDo(rc, "NOSUCHCOMMAND"); !isRedisReplyError(err) {
			t.Fatalf("unknown command: %v, want an error reply", err)
		}
	}
	expectRedis(t, rc, "PONG", "PING")
	if n := len(rc.idle); n != 1 {
		t.Errorf("%d idle connections after sequential commands, want 1", n)
	}
}

func TestRedisAuthAndSelect(t *testing.T) {
	srv := startRedis(t, "--requirepass", "s3cret", "--user", "alice", "on", ">alice-pw", "~app:*", "+@all")
	if _, err := redisDo(testRedisClient(srv.addr, "wrong"), "PING"); err == nil || !strings.Contains(err.Error(), "AUTH") {
		t.Errorf("a wrong password: %v, want an AUTH error", err)
	}
	if _, err := redisDo(testRedisClient(srv.addr, ""), "GET", "x"); err == nil {
		t.Errorf("no password: want NOAUTH")
	}
	rc := testRedisClient(srv.addr, "s3cret")
	rc.database = 3
	expectRedis(t, rc, "OK", "SET", "app:k", "in db 3")
	db0 := testRedisClient(srv.addr, "s3cret")
	if r := expectRedis(t, db0, "", "GET", "app:k"); !r.null {
		t.Errorf("database 0 sees database 3's key: %+v", r)
	}
	alice := testRedisClient(srv.addr, "alice-pw")
	alice.username = "alice"
	alice.database = 3
	expectRedis(t, alice, "in db 3", "GET", "app:k")
	if _, err := redisDo(alice, "GET", "other:k"); !isRedisReplyError(err) {
		t.Errorf("alice outside her keys: %v, want NOPERM", err)
	}
}

func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := writeTestServerCert(t, dir)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startRedis(t, "--tls-port", "PORT", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no")
	_, conf, err := compileTLS("cache.redis.tls", TLSConfig{CA: string(caPEM)})
	if err != nil {
		t.Fatal(err)
	}
	rc := testRedisClient(srv.addr, "")
	rc.tls = conf
	expectRedis(t, rc, "PONG", "PING")
	plain := testRedisClient(srv.addr, "")
	if _, err := redisDo(plain, "PING"); err == nil {
		t.Errorf("plain TCP to a TLS-only server answered")
	}
	// A server that asks for a client certificate: tls.cert and tls.key present one.
	mutual := startRedis(t, "--tls-port", "PORT", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "yes")
	noCert := testRedisClient(mutual.addr, "")
	noCert.tls = conf
	if _, err := redisDo(noCert, "PING"); err == nil {
		t.Errorf("a server that requires a client certificate answered without one")
	}
	_, withCert, err := compileTLS("cache.redis.tls", TLSConfig{CA: caFile, Cert: certFile, Key: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	client := testRedisClient(mutual.addr, "")
	client.tls = withCert
	expectRedis(t, client, "PONG", "PING")

	untrusted := testRedisClient(srv.addr, "")
	untrusted.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if _, err := redisDo(untrusted, "PING"); err == nil || redisErrorCategory(err) != "TLS: the certificate is not trusted" {
		t.Errorf("a server the CA does not vouch for: %v (%s)", err, redisErrorCategory(err))
	}
}

// TestRedisBreaker: during an outage the client gives up at once after a few failures, instead
// of costing every request a timeout; once the server is back it serves again.
func TestRedisBreaker(t *testing.T) {
	srv := startRedis(t)
	rc := testRedisClient(srv.addr, "")
	expectRedis(t, rc, "PONG", "PING")
	srv.stop()
	for i := 0; i < redisFailuresToOpen; i++ {
		if _, err := redisDo(rc, "PING"); err == nil || err == errRedisSkipped {
			t.Fatalf("call %d to a stopped server: %v, want a failure", i, err)
		}
	}
	start := time.Now()
	if _, err := redisDo(rc, "PING"); err != errRedisSkipped {
		t.Fatalf("after %d failures: %v, want it skipped", redisFailuresToOpen, err)
	}
	if took := time.Since(start); took > 10*time.Millisecond {
		t.Errorf("a skipped call took %v", took)
	}
	srv.start(t)
	waitFor(t, 5*time.Second, "the client to serve again", func() bool {
		_, err := redisDo(rc, "PING")
		return err == nil
	})
}

// TestRedisReplyLimits: replies that could exhaust memory or nest without end are refused, and a
// peer that claims a long reply costs memory only for what it sends.
func TestRedisReplyLimits(t *testing.T) {
	read := func(in string) (redisReply, error) {
		return readRedisReply(bufio.NewReader(strings.NewReader(in)), 0)
	}
	for _, in := range []string{
		"$" + strconv.Itoa(redisMaxBulk+1) + "\r\n",
		"*1\r\n*1\r\n:1\r\n", // MGET's reply holds no array
		"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
		"*" + strconv.Itoa(redisMaxArray+1) + "\r\n" + strings.Repeat(":0\r\n", redisMaxArray+1),
		"*100000\r\n",
		"$3\r\nabcXY", // a bulk string not ended by CRLF
		"$3\r\nab",
		"?what\r\n",
		"+no CR\n",
	} {
		if _, err := read(in); err == nil {
			t.Errorf("%q: read without error", in)
		}
	}
	full := "*" + strconv.Itoa(redisMaxArray) + "\r\n" + strings.Repeat("$3\r\nabc\r\n", redisMaxArray-1) + "$-1\r\n"
	if reply, err := read(full); err != nil || len(reply.arr) != redisMaxArray || reply.arr[0].str != "abc" || !reply.arr[redisMaxArray-1].null {
		t.Errorf("an array of %d values: %+v, %v", redisMaxArray, reply, err)
	}
	long := strings.Repeat("x", redisBulkUpFront*3+5)
	if reply, err := read("$" + strconv.Itoa(len(long)) + "\r\n" + long + "\r\n"); err != nil || reply.str != long {
		t.Errorf("a bulk string longer than what is allocated up front: %d bytes, %v", len(reply.str), err)
	}

	// Each value claims the largest bulk string and sends three bytes of it.
	claims := "*" + strconv.Itoa(redisMaxArray) + "\r\n" + strings.Repeat("$"+strconv.Itoa(redisMaxBulk)+"\r\nabc", redisMaxArray)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := read(claims)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a cut reply was read without error")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<10 {
		t.Errorf("a %d-byte reply claiming values of 1 MiB allocated %d bytes", len(claims), grew)
	}
}

// writeTestServerCert writes a CA and a certificate for 127.0.0.1 signed by it, and returns the
// CA's PEM and the files of the certificate and its key.
func writeTestServerCert(t *testing.T, dir string) ([]byte, string, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

// TestRedisArrayErrorKeepsStep: an error reply inside an array (a proxy's failed shard) is read
// with the rest of the array, so the next command on the connection reads its own reply.
func TestRedisArrayErrorKeepsStep(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	store := map[string]string{"victim": "v1 1 {}"}
	first := true
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			cmd, err := readRedisReply(r, 0)
			if err != nil {
				return
			}
			out := "*" + strconv.Itoa(len(cmd.arr)-1) + "\r\n"
			for i, k := range cmd.arr[1:] {
				if v, ok := store[k.str]; ok && !(first && i == 0) {
					out += "$" + strconv.Itoa(len(v)) + "\r\n" + v + "\r\n"
				} else if first && i == 0 {
					out += "-ERR shard unavailable\r\n"
				} else {
					out += "$-1\r\n"
				}
			}
			first = false
			if _, err := c.Write([]byte(out)); err != nil {
				return
			}
		}
	}()
	rc := testRedisClient(ln.Addr().String(), "")
	if _, err := redisDo(rc, "MGET", "x", "y"); !isRedisReplyError(err) {
		t.Fatalf("MGET with a failed element: %v, want an error reply", err)
	}
	if r, err := redisDo(rc, "MGET", "victim", "m"); err != nil || r.arr[0].str != "v1 1 {}" {
		t.Fatalf("MGET victim: %+v %v", r, err)
	}
	if r, err := redisDo(rc, "MGET", "attacker", "m"); err != nil || !r.arr[0].null {
		t.Fatalf("MGET attacker read another command's reply: %+v %v", r, err)
	}
}
