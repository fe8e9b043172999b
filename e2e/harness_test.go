//go:build unix

package e2e

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokengate/oauthintrospection/e2e/echo"
)

// Deadlines of the wait-for helpers. Every wait polls until its condition holds or its deadline
// passes; nothing sleeps and hopes.
const (
	idpAttemptTimeout   = 20 * time.Second
	idpAttempts         = 3
	traefikStartTimeout = 90 * time.Second
	reloadTimeout       = 30 * time.Second
	logTimeout          = 15 * time.Second
	pollInterval        = 50 * time.Millisecond
	traefikBuildTimeout = 30 * time.Minute
	pluginModule        = "github.com/tokengate/oauthintrospection"
)

// env is the fixture every test runs against, built once by TestMain.
var env *fixture

type fixture struct {
	repoRoot string // the plugin repository
	e2eDir   string // this module
	workDir  string // temp dir: Traefik's cwd, configs, logs

	idp     *process
	idpURL  string
	idp2    *process // second IdP, stopped by TestIdPDown
	idp2URL string
	backend *httptest.Server
	traefik *process
	// traefikBin is the Traefik binary, for the tests that start a Traefik of their own.
	traefikBin string

	webURL        string // http://127.0.0.1:<web entrypoint>
	pingURL       string
	dynamicPath   string
	dynamicTmpl   string // testdata/dynamic.yml.tmpl with placeholders filled, markers kept
	traefikLog    string
	accessLog     string
	traefikOutput string // Traefik's stdout+stderr
	idpLog        string // the first IdP's stderr

	auth authFiles // keys and secret files of the client authentication scenarios

	dynMu sync.Mutex // serialises writes of the dynamic file
}

func TestMain(m *testing.M) {
	code := 1
	f, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e setup failed: %v\n", err)
		if f != nil {
			fmt.Fprintln(os.Stderr, f.logTail(80))
		}
	} else {
		env = f
		code = m.Run()
	}
	if f != nil {
		f.teardown()
	}
	os.Exit(code)
}

// setup starts everything: IdPs, echo backend and Traefik with the plugin. On error it returns
// what it started so far, for teardown.
func setup() (*fixture, error) {
	start := time.Now()
	e2eDir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	f := &fixture{e2eDir: e2eDir, repoRoot: filepath.Dir(e2eDir)}
	if f.workDir, err = os.MkdirTemp("", "oauthintrospection-e2e-"); err != nil {
		return nil, err
	}

	traefikBin, err := traefikBinary(f.repoRoot)
	if err != nil {
		return f, err
	}
	logf("traefik binary: %s", traefikBin)
	f.traefikBin = traefikBin

	idpDir := filepath.Join(e2eDir, "idp")
	if err := npmCI(idpDir); err != nil {
		return f, err
	}
	// The keys of rs-jwt exist before the IdP that must know their public parts.
	if f.auth, err = writeAuthFiles(f.workDir); err != nil {
		return f, err
	}
	f.idpLog = filepath.Join(f.workDir, "idp.log")

	// Both IdPs start at once; node takes a moment to boot.
	type started struct {
		p   *process
		url string
		err error
	}
	ch1, ch2 := make(chan started, 1), make(chan started, 1)
	go func() {
		p, u, err := startIdP(idpDir, f.workDir, "idp", "IDP_RS_JWKS_FILE="+f.auth.jwks)
		ch1 <- started{p, u, err}
	}()
	go func() { p, u, err := startIdP(idpDir, f.workDir, "idp2"); ch2 <- started{p, u, err} }()
	s1, s2 := <-ch1, <-ch2
	f.idp, f.idpURL, f.idp2, f.idp2URL = s1.p, s1.url, s2.p, s2.url
	if s1.err != nil {
		return f, s1.err
	}
	if s2.err != nil {
		return f, s2.err
	}
	logf("idp: %s, idp2: %s", f.idpURL, f.idp2URL)

	f.backend = httptest.NewServer(echo.Handler())
	logf("echo backend: %s", f.backend.URL)

	if err := f.layout(); err != nil {
		return f, err
	}
	if err := f.startTraefik(traefikBin); err != nil {
		return f, err
	}
	logf("traefik: %s (setup took %s)", f.webURL, time.Since(start).Round(time.Millisecond))
	return f, nil
}

func (f *fixture) teardown() {
	if f.traefik != nil {
		f.traefik.stop()
	}
	if f.idp != nil {
		f.idp.stop()
	}
	if f.idp2 != nil {
		f.idp2.stop()
	}
	if f.backend != nil {
		f.backend.Close()
	}
	if f.workDir != "" && os.Getenv("E2E_KEEP") == "" {
		_ = os.RemoveAll(f.workDir)
	} else if f.workDir != "" {
		logf("kept work dir %s", f.workDir)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[e2e] "+format+"\n", args...)
}

// traefikBinary returns $TRAEFIK_BIN, or the binary scripts/build-traefik.sh builds and caches.
func traefikBinary(repoRoot string) (string, error) {
	if bin := os.Getenv("TRAEFIK_BIN"); bin != "" {
		if st, err := os.Stat(bin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("TRAEFIK_BIN=%s is not an executable file", bin)
		}
		return bin, nil
	}
	script := filepath.Join(repoRoot, "scripts", "build-traefik.sh")
	logf("running %s (a cold build takes several minutes)", script)
	cmd := exec.Command("bash", script)
	cmd.Dir = repoRoot
	cmd.Stderr = os.Stderr
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := runWithTimeout(cmd, traefikBuildTimeout); err != nil {
		return "", fmt.Errorf("build-traefik.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin := strings.TrimSpace(lines[len(lines)-1])
	if bin == "" {
		return "", errors.New("build-traefik.sh printed no path")
	}
	return bin, nil
}

// npmCI installs the IdP's dependencies when node_modules is missing.
func npmCI(idpDir string) error {
	if _, err := os.Stat(filepath.Join(idpDir, "node_modules", "oidc-provider")); err == nil {
		return nil
	}
	logf("running npm ci in %s", idpDir)
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = idpDir
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := runWithTimeout(cmd, 10*time.Minute); err != nil {
		return fmt.Errorf("npm ci: %w", err)
	}
	return nil
}

// runWithTimeout runs cmd in its own process group and kills the group when the timeout passes.
func runWithTimeout(cmd *exec.Cmd, timeout time.Duration) error {
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("timed out after %s", timeout)
	}
}

// process is a child started in its own process group.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	once sync.Once
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL if it is still there after 10 s, and
// waits until the process is reaped.
func (p *process) stop() {
	p.once.Do(func() {
		pid := p.cmd.Process.Pid
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			logf("%s (pid %d) ignored SIGTERM; killing it", p.name, pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-p.done
		}
		// Anything left in the group (there should be nothing) goes too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	})
}

// startIdP starts node server.js on a free port, with extraEnv ("NAME=value") added to the
// environment, and waits for its IDP_READY line.
//
// Twice in CI runs (never by hand), a node process printed its first line and then neither
// became ready within a minute nor answered SIGTERM. So an IdP that is not ready within
// idpAttemptTimeout has its threads' states logged (procState), and is stopped and started
// again, up to idpAttempts times.
func startIdP(idpDir, workDir, name string, extraEnv ...string) (*process, string, error) {
	var lastErr error
	for attempt := 1; attempt <= idpAttempts; attempt++ {
		cmd := exec.Command("node", "server.js")
		cmd.Dir = idpDir
		cmd.Env = append(append(os.Environ(), "IDP_PORT=0"), extraEnv...)
		logPath := filepath.Join(workDir, fmt.Sprintf("%s.log", name))
		if attempt > 1 {
			logPath = filepath.Join(workDir, fmt.Sprintf("%s-%d.log", name, attempt))
		}
		p, u, err := startReady(name, cmd, logPath, "IDP_READY ", idpAttemptTimeout)
		if err == nil {
			return p, u, nil
		}
		lastErr = err
		if p != nil && !p.exited() {
			logf("%s: not ready (attempt %d): %v; its threads: %s", name, attempt, err, procState(p.cmd.Process.Pid))
			p.stop()
		}
	}
	return nil, "", lastErr
}

// procState describes what a process's threads are doing, from /proc (Linux): each thread's
// name, state (R running, S sleeping, D in uninterruptible I/O) and the kernel function it
// waits in. It tells a CPU-bound hang from a blocked syscall.
func procState(pid int) string {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		return "no /proc entries"
	}
	var out []string
	for _, task := range tasks {
		stat, _ := os.ReadFile(filepath.Join(task, "stat"))
		wchan, _ := os.ReadFile(filepath.Join(task, "wchan"))
		fields := strings.Fields(string(stat))
		if len(fields) > 14 {
			// comm, state, utime+stime in clock ticks
			out = append(out, fmt.Sprintf("%s %s cpu=%s+%s wchan=%s", fields[1], fields[2], fields[13], fields[14], wchan))
		}
	}
	return strings.Join(out, "; ")
}

// startReady starts cmd in its own process group, its stderr to logPath, and waits until it
// prints a line that starts with readyPrefix on stdout; it returns the rest of that line.
func startReady(name string, cmd *exec.Cmd, logPath, readyPrefix string, timeout time.Duration) (*process, string, error) {
	stderr, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stderr.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return nil, "", err
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), readyPrefix); ok {
				select {
				case ready <- strings.TrimSpace(u):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		stderr.Close()
		close(p.done)
	}()
	select {
	case u := <-ready:
		return p, u, nil
	case <-p.done:
		return p, "", fmt.Errorf("%s exited before %q; see %s", name, strings.TrimSpace(readyPrefix), logPath)
	case <-time.After(timeout):
		return p, "", fmt.Errorf("%s: no %q within %s", name, strings.TrimSpace(readyPrefix), timeout)
	}
}

// layout writes the plugins-local copy of the plugin and the static and dynamic configuration.
func (f *fixture) layout() error {
	pluginDir := filepath.Join(f.workDir, "plugins-local", "src", filepath.FromSlash(pluginModule))
	if err := copyPlugin(f.repoRoot, pluginDir); err != nil {
		return err
	}
	webPort, err := freePort()
	if err != nil {
		return err
	}
	pingPort, err := freePort()
	if err != nil {
		return err
	}
	f.webURL = fmt.Sprintf("http://127.0.0.1:%d", webPort)
	f.pingURL = fmt.Sprintf("http://127.0.0.1:%d/ping", pingPort)
	f.traefikLog = filepath.Join(f.workDir, "traefik.log")
	f.accessLog = filepath.Join(f.workDir, "access.log")
	f.traefikOutput = filepath.Join(f.workDir, "traefik.out")
	// The watched file lives alone in its directory, so only its own changes trigger reloads.
	if err := os.MkdirAll(filepath.Join(f.workDir, "dynamic"), 0o755); err != nil {
		return err
	}
	f.dynamicPath = filepath.Join(f.workDir, "dynamic", "dynamic.yml")

	static := fmt.Sprintf(`# Static configuration written by the e2e harness.
global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:%d"
  ping:
    address: "127.0.0.1:%d"
ping:
  entryPoint: ping
log:
  level: DEBUG
  noColor: true
  filePath: %q
accessLog:
  format: json
  filePath: %q
experimental:
  localPlugins:
    oAuthIntrospection:
      moduleName: %s
providers:
  providersThrottleDuration: 500ms
  file:
    filename: %q
    watch: true
`, webPort, pingPort, f.traefikLog, f.accessLog, pluginModule, f.dynamicPath)
	if err := os.WriteFile(filepath.Join(f.workDir, "traefik.yml"), []byte(static), 0o644); err != nil {
		return err
	}

	tmpl, err := os.ReadFile(filepath.Join(f.e2eDir, "testdata", "dynamic.yml.tmpl"))
	if err != nil {
		return err
	}
	f.dynamicTmpl = strings.NewReplacer(
		"__IDP_URL__", f.idpURL,
		"__IDP2_URL__", f.idp2URL,
		"__RS_BASIC__", base64.StdEncoding.EncodeToString([]byte("rs-basic:rs-basic-secret")),
		"__BACKEND_URL__", f.backend.URL,
		"__RS_POST_SECRET_FILE__", f.auth.postSecret,
		"__ROTATING_SECRET_FILE__", f.auth.rotatingSecret,
		"__RS_JWT_RSA_KEY_FILE__", f.auth.rsaKey,
		"__RS_JWT_EC_KEY_FILE__", f.auth.ecKey,
		"__UNKNOWN_KEY_FILE__", f.auth.unknownKey,
	).Replace(string(tmpl))
	return f.writeDynamic("", "")
}

// writeDynamic writes the dynamic configuration with extra routers and middlewares (YAML indented
// for their sections) in place of the markers. It writes a temp file next to the watched
// directory and renames it in place, so Traefik never reads a half-written file.
func (f *fixture) writeDynamic(extraRouters, extraMiddlewares string) error {
	f.dynMu.Lock()
	defer f.dynMu.Unlock()
	content := strings.Replace(f.dynamicTmpl, "    # __EXTRA_ROUTERS__\n", extraRouters, 1)
	content = strings.Replace(content, "    # __EXTRA_MIDDLEWARES__\n", extraMiddlewares, 1)
	tmp, err := os.CreateTemp(f.workDir, "dynamic-*.yml")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.dynamicPath)
}

// copyPlugin copies the plugin's root-level non-test .go files, go.mod and .traefik.yml.
func copyPlugin(repoRoot, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(repoRoot)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		isSource := strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
		if !isSource && name != "go.mod" && name != ".traefik.yml" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return err
		}
		n++
	}
	if n < 3 {
		return fmt.Errorf("copied only %d plugin files from %s", n, repoRoot)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startTraefik starts Traefik in the work dir and waits until the dynamic configuration is live.
func (f *fixture) startTraefik(bin string) error {
	p, err := runTraefik(bin, f.workDir, f.traefikOutput, os.Environ())
	if err != nil {
		return err
	}
	f.traefik = p

	// Ready when ping answers, the control route answers 200 and the plugin route challenges.
	deadline := time.Now().Add(traefikStartTimeout)
	checks := []struct {
		url  string
		want int
	}{
		{f.pingURL, http.StatusOK},
		{f.webURL + "/open/", http.StatusOK},
		{f.webURL + "/hub/", http.StatusUnauthorized},
	}
	for _, c := range checks {
		for {
			if p.exited() {
				return fmt.Errorf("traefik exited during startup; see %s", f.traefikOutput)
			}
			if status(c.url) == c.want {
				break
			}
			if line, bad := fileLine(f.traefikLog, "Error while building configuration"); bad {
				return fmt.Errorf("traefik rejected the dynamic configuration: %s", line)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("traefik not ready within %s: %s did not answer %d", traefikStartTimeout, c.url, c.want)
			}
			time.Sleep(pollInterval)
		}
	}
	return nil
}

// runTraefik starts Traefik with dir/traefik.yml, in dir, with environ, its output to outPath.
func runTraefik(bin, dir, outPath string, environ []string) (*process, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Dir = dir
	cmd.Env = environ
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, err
	}
	p := &process{name: "traefik", cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	return p, nil
}

// status returns the status of a GET, or 0 on a transport error.
func status(u string) int {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0
	}
	return statusOfRequest(req)
}

// statusOfRequest sends req with the short-timeout client, for polls: only the status, 0 on a
// transport error.
func statusOfRequest(req *http.Request) int {
	resp, err := quickClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var (
	quickClient = &http.Client{Timeout: 2 * time.Second}
	client      = &http.Client{Timeout: 20 * time.Second}
)

// eventually polls cond until it returns true or timeout passes; it fails the test with msg then.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(pollInterval)
	}
}

// logTail returns the last lines of Traefik's log and output, for failure reports.
func (f *fixture) logTail(lines int) string {
	var b strings.Builder
	for _, path := range []string{f.traefikLog, f.traefikOutput} {
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(all) > lines {
			all = all[len(all)-lines:]
		}
		fmt.Fprintf(&b, "---- last %d lines of %s ----\n%s\n", len(all), path, strings.Join(all, "\n"))
	}
	return b.String()
}

// setupTest reports Traefik's log tail if the test fails, and fails at once if Traefik is gone.
func setupTest(t *testing.T) {
	t.Helper()
	if env.traefik.exited() {
		t.Fatalf("traefik is not running\n%s", env.logTail(80))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("\n" + env.logTail(60))
		}
	})
}

// postForm POSTs form to endpoint with HTTP Basic client credentials and returns the body of a 200.
func postForm(t *testing.T, what, endpoint, clientID, secret string, form url.Values) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(clientID, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s request: %v", what, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", what, resp.StatusCode, body)
	}
	return body
}

// token gets a client_credentials access token from the IdP at idpURL.
func token(t *testing.T, idpURL, clientID, secret, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	body := postForm(t, "token", idpURL+"/token", clientID, secret, form)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s: %v", body, err)
	}
	issuedMu.Lock()
	issued = append(issued, tr.AccessToken)
	issuedMu.Unlock()
	return tr.AccessToken
}

// issued holds every token the suite got, for TestTokensNotLogged.
var (
	issuedMu sync.Mutex
	issued   []string
)

func adminToken(t *testing.T) string {
	return token(t, env.idpURL, "app-admin", "app-admin-secret", "api:read")
}

func userToken(t *testing.T) string {
	return token(t, env.idpURL, "app-user", "app-user-secret", "api:read")
}

// revoke revokes token at the IdP (RFC 7009) as the client that owns it.
func revoke(t *testing.T, idpURL, clientID, secret, tok string) {
	t.Helper()
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}
	postForm(t, "revocation", idpURL+"/token/revocation", clientID, secret, form)
}

// response is what a call through Traefik returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

// echoed decodes the echo backend's answer; the test fails if the body is not one.
func (r response) echoed(t *testing.T) echo.Request {
	t.Helper()
	var e echo.Request
	if err := json.Unmarshal(r.body, &e); err != nil || e.Headers == nil {
		t.Fatalf("not an echo answer (status %d): %s", r.status, r.body)
	}
	return e
}

// call sends a GET through Traefik's web entrypoint. mod may adjust the request.
func call(t *testing.T, pathAndQuery string, mod func(*http.Request)) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, env.webURL+pathAndQuery, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(req)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", pathAndQuery, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", pathAndQuery, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// bearer returns a request modifier that sends tok in the Authorization header.
func bearer(tok string) func(*http.Request) {
	return func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok) }
}

// statusOf returns only the status of a GET through Traefik, 0 on a transport error; for polls.
func statusOf(pathAndQuery string, mod func(*http.Request)) int {
	req, err := http.NewRequest(http.MethodGet, env.webURL+pathAndQuery, nil)
	if err != nil {
		return 0
	}
	if mod != nil {
		mod(req)
	}
	return statusOfRequest(req)
}

// fileLine returns the first line of the file at path that contains every one of subs.
func fileLine(path string, subs ...string) (string, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		ok := true
		for _, s := range subs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok && line != "" {
			return line, true
		}
	}
	return "", false
}

// Client authentication fixtures (clientauth_test.go): the rs-jwt keys and the secret files.

const (
	rsPostSecret = "rs-post-secret" // the IdP's secret of rs-post, read by the plugin from a file only
	rsaKeyID     = "e2e-rs256"
	ecKeyID      = "e2e-es256"
)

// authFiles are the paths (and one value) the client authentication middlewares use.
type authFiles struct {
	postSecret     string // holds rsPostSecret
	rotatingSecret string // holds rotatingWrong until TestClientAuth writes rsPostSecret into it
	rotatingWrong  string // a wrong secret, random per run
	rsaKey         string // RSA 2048, PKCS #8 PEM; its public key is in jwks
	ecKey          string // EC P-256, SEC 1 PEM; its public key is in jwks
	unknownKey     string // RSA 2048, PKCS #1 PEM; NOT in jwks
	jwks           string // the public keys of rs-jwt, for the IdP (IDP_RS_JWKS_FILE)
}

// writeAuthFiles generates the rs-jwt keys and writes them, their JWKS and the secret files in dir.
func writeAuthFiles(dir string) (authFiles, error) {
	a := authFiles{
		postSecret:     filepath.Join(dir, "rs-post.secret"),
		rotatingSecret: filepath.Join(dir, "rotating.secret"),
		rsaKey:         filepath.Join(dir, "rs-jwt-rsa.pem"),
		ecKey:          filepath.Join(dir, "rs-jwt-ec.pem"),
		unknownKey:     filepath.Join(dir, "unknown-rsa.pem"),
		jwks:           filepath.Join(dir, "rs-jwt.jwks.json"),
	}
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return a, err
	}
	a.rotatingWrong = "rotating-wrong-marker-" + hex.EncodeToString(nonce)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return a, err
	}
	unknown, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return a, err
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return a, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		return a, err
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		return a, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	coord := func(n *big.Int) string { return b64(n.FillBytes(make([]byte, 32))) }
	jwks, err := json.MarshalIndent(map[string]any{"keys": []map[string]string{
		{
			"kty": "RSA", "kid": rsaKeyID, "alg": "RS256", "use": "sig",
			"n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes()),
		},
		{
			"kty": "EC", "kid": ecKeyID, "alg": "ES256", "use": "sig", "crv": "P-256",
			"x": coord(ecKey.X), "y": coord(ecKey.Y),
		},
	}}, "", "  ")
	if err != nil {
		return a, err
	}
	for _, w := range []struct {
		path string
		data []byte
	}{
		{a.postSecret, []byte(rsPostSecret + "\n")},
		{a.rotatingSecret, []byte(a.rotatingWrong + "\n")},
		{a.rsaKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})},
		{a.ecKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		{a.unknownKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(unknown)})},
		{a.jwks, jwks},
	} {
		if err := writeFileAtomic(w.path, w.data, 0o600); err != nil {
			return a, err
		}
	}
	return a, nil
}

// writeFileAtomic writes data to a temp file in path's directory and renames it to path, so a
// reader sees the old content or the new, never a part.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
