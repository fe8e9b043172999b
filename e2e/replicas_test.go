//go:build unix

package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Several replicas: two Traefik processes with one configuration share one Redis (cache.redis),
// one with a password (read from a file), one over TLS. The middlewares introspect through a
// proxy in the test that counts the calls, and accept revocations at /shared/revoke.

const sharedDynamic = `http:
  routers:
    shared:
      rule: "PathPrefix(` + "`/shared`" + `)"
      service: echo
      middlewares: [shared]
    shared-tls:
      rule: "PathPrefix(` + "`/tls`" + `)"
      service: echo
      middlewares: [shared-tls]
  middlewares:
    shared:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig:
            url: "__PROXY__/token/introspection"
            headers: {Authorization: "Basic __RS_BASIC__"}
          forwardHeaders: {Group: grp}
          claims: "Equals(` + "`grp`, `admin`" + `)"
          cache:
            negativeTtlSeconds: 30
            redis:
              endpoints: "__REDIS__"
              passwordFile: "__REDIS_PASSWORD_FILE__"
              localTtlSeconds: 2
              keyPrefix: "e2e:"
          revocation:
            path: /shared/revoke
            url: "__IDP__/token/revocation"
    shared-tls:
      plugin:
        oAuthIntrospection:
          tokenSource: {header: Authorization, headerAuthScheme: Bearer}
          clientConfig:
            url: "__PROXY__/token/introspection"
            headers: {Authorization: "Basic __RS_BASIC__"}
          forwardHeaders: {Group: grp}
          cache:
            redis:
              endpoints: "__REDIS_TLS__"
              tls: {ca: "__REDIS_CA__"}
  services:
    echo:
      loadBalancer:
        servers: [{url: "__BACKEND__"}]
`

// localBound is how long, at most, a replica accepts a token revoked through another one:
// localTtlSeconds, and a second for the clocks of the cache's whole seconds.
const localBound = 3 * time.Second

func TestSharedCacheReplicas(t *testing.T) {
	setupTest(t)
	dir := filepath.Join(env.workDir, "replicas")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	requireRedisServer(t)

	passwordFile := filepath.Join(dir, "redis-password")
	require.NoError(t, os.WriteFile(passwordFile, []byte("e2e-redis-pw\n"), 0o600))
	plain := startRedisServer(t, dir, "plain", "--requirepass", "e2e-redis-pw")
	caPEM, certFile, keyFile := writeServerCert(t, dir)
	caFile := filepath.Join(dir, "redis-ca.pem")
	require.NoError(t, os.WriteFile(caFile, caPEM, 0o644))
	secure := startRedisServer(t, dir, "tls", "--tls-port", "PORT", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no")

	var introspections atomic.Int32
	idp, err := url.Parse(env.idpURL)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(idp)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token/introspection" {
			introspections.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	dynamic := strings.NewReplacer(
		"__PROXY__", proxy.URL, "__IDP__", env.idpURL, "__BACKEND__", env.backend.URL,
		"__RS_BASIC__", base64.StdEncoding.EncodeToString([]byte("rs-basic:rs-basic-secret")),
		"__REDIS__", plain.addr, "__REDIS_PASSWORD_FILE__", passwordFile,
		"__REDIS_TLS__", secure.addr, "__REDIS_CA__", caFile,
	).Replace(sharedDynamic)
	a := startFileTraefik(t, filepath.Join(dir, "a"), dynamic)
	b := startFileTraefik(t, filepath.Join(dir, "b"), dynamic)

	t.Run("a token is introspected once for both replicas", func(t *testing.T) {
		tok := adminToken(t)
		before := introspections.Load()
		assert.Equal(t, http.StatusOK, a.status("/shared/x", tok))
		assert.Equal(t, http.StatusOK, b.status("/shared/x", tok))
		assert.Equal(t, http.StatusForbidden, b.status("/shared/x", userToken(t)))
		assert.Equal(t, http.StatusUnauthorized, a.status("/shared/x", "never-issued"))
		assert.Equal(t, http.StatusUnauthorized, b.status("/shared/x", "never-issued"))
		assert.Equal(t, int32(3), introspections.Load()-before, "admin, user and the unknown token, once each")
		assert.Contains(t, redisCLI(t, plain, "-a", "e2e-redis-pw", "--no-auth-warning", "KEYS", "e2e:*"), "e2e:")
	})

	t.Run("over TLS", func(t *testing.T) {
		tok := adminToken(t)
		before := introspections.Load()
		assert.Equal(t, http.StatusOK, a.status("/tls/x", tok))
		assert.Equal(t, http.StatusOK, b.status("/tls/x", tok))
		assert.Equal(t, int32(1), introspections.Load()-before)
		assert.NotEqual(t, "0", strings.TrimSpace(redisCLI(t, secure, "--tls", "--cacert", caFile, "DBSIZE")))
	})

	t.Run("revocation through one replica stops the token on both within the bound", func(t *testing.T) {
		tok := adminToken(t)
		require.Equal(t, http.StatusOK, a.status("/shared/x", tok))
		require.Equal(t, http.StatusOK, b.status("/shared/x", tok))
		form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
		req, err := http.NewRequest(http.MethodPost, a.webURL+"/shared/revoke", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.SetBasicAuth("app-admin", "app-admin-secret")
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		revokedAt := time.Now()
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, http.StatusUnauthorized, a.status("/shared/x", tok), "the replica that revoked")
		eventually(t, localBound+2*time.Second, func() bool { return b.status("/shared/x", tok) == http.StatusUnauthorized },
			"the other replica kept accepting the revoked token")
		took := time.Since(revokedAt)
		assert.Less(t, took, localBound, "the other replica stopped the token after %v", took)
		t.Logf("the other replica stopped the revoked token after %v", took.Round(time.Millisecond))
	})

	t.Run("Redis killed: verdicts unchanged, latency bounded", func(t *testing.T) {
		plain.stop()
		admin, user := adminToken(t), userToken(t)
		for _, r := range []*replicaTraefik{a, b} {
			for i := 0; i < 3; i++ {
				start := time.Now()
				assert.Equal(t, http.StatusOK, r.status("/shared/x", admin))
				assert.Equal(t, http.StatusForbidden, r.status("/shared/x", user))
				assert.Less(t, time.Since(start), time.Second)
			}
		}
		_, found := fileLine(a.log, "shared cache: Redis read failed")
		assert.True(t, found, "replica A never logged the Redis failure")
		for _, r := range []*replicaTraefik{a, b} {
			_, leaked := fileLine(r.log, "e2e-redis-pw")
			assert.False(t, leaked, "the Redis password is in a log")
		}
	})
}

// replicaTraefik is one of the replicas' Traefik processes.
type replicaTraefik struct {
	webURL string
	log    string
}

func (r *replicaTraefik) status(path, tok string) int {
	req, err := http.NewRequest(http.MethodGet, r.webURL+path, nil)
	if err != nil {
		return 0
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return statusOfRequest(req)
}

// startFileTraefik starts a Traefik in dir with the file provider serving dynamic, and waits
// until its shared route challenges a request without a token.
func startFileTraefik(t *testing.T, dir, dynamic string) *replicaTraefik {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dynamic.yml"), []byte(dynamic), 0o644))
	p, webURL, logPath := startOwnTraefik(t, dir, fmt.Sprintf("  file: {filename: %q}\n", filepath.Join(dir, "dynamic.yml")), os.Environ())
	r := &replicaTraefik{webURL: webURL, log: logPath}
	eventually(t, traefikStartTimeout, func() bool { return !p.exited() && r.status("/shared/x", "") == http.StatusUnauthorized },
		"the replica in %s never served the shared route", dir)
	return r
}

// redisServer is a redis-server this test started.
type redisServer struct {
	addr string
	port int
	p    *process
}

func (s *redisServer) stop() { s.p.stop() }

// requireRedisServer fails when redis-server is missing (scripts/install-redis.sh installs it).
func requireRedisServer(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is not installed: run scripts/install-redis.sh")
}

// startRedisServer starts redis-server on a free loopback port (PORT in args is replaced by
// it; with --tls-port the server listens on TLS only) and waits until it takes connections.
func startRedisServer(t *testing.T, dir, name string, args ...string) *redisServer {
	t.Helper()
	port, err := freePort()
	require.NoError(t, err)
	all := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
	if strings.Contains(strings.Join(args, " "), "--tls-port") {
		all = append(all, "--port", "0")
	} else {
		all = append(all, "--port", strconv.Itoa(port))
	}
	for _, a := range args {
		if a == "PORT" {
			a = strconv.Itoa(port)
		}
		all = append(all, a)
	}
	logPath := filepath.Join(dir, "redis-"+name+".log")
	out, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command("redis-server", all...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	require.NoError(t, cmd.Start())
	p := &process{name: "redis-" + name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	s := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), port: port, p: p}
	t.Cleanup(s.stop)
	eventually(t, 10*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, "redis-server %s never listened; see %s", name, logPath)
	return s
}

// redisCLI runs redis-cli against s and returns its output.
func redisCLI(t *testing.T, s *redisServer, args ...string) string {
	t.Helper()
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port)}, args...)...).CombinedOutput()
	require.NoError(t, err, "redis-cli: %s", out)
	return string(out)
}
