//go:build unix

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Kubernetes path: Traefik's own kubernetesCRD provider, reading the manifests of
// demo/kubernetes/ from a minimal API server (kubeapi/), in front of an IdP shaped like Keycloak
// (node-oidc-provider with IDP_REALM, over HTTPS). The manifests are applied as they are, except
// for the IdP's address, the CA certificate in the Secret, and the backend's EndpointSlice that
// a cluster's controller would have written.

// keycloakRealm is the realm of the Keycloak-shaped IdP.
const keycloakRealm = "demo"

// demoManifests are the files of demo/kubernetes/ the test applies.
var demoManifests = []string{"middleware.yaml", "ingressroute.yaml", "keycloak-roles.yaml"}

// kubeEnv is TestKubernetesCRD's Traefik, API server and IdP.
type kubeEnv struct {
	dir        string // its work dir; Traefik's cwd
	manifests  string // the directory kubeapi serves
	issuer     string // https://127.0.0.1:<port>/realms/demo
	webURL     string
	traefikLog string
	caPEM      []byte       // the IdP's CA
	idpClient  *http.Client // trusts the IdP's CA
}

func TestKubernetesCRD(t *testing.T) {
	setupTest(t)
	k := startKube(t)

	t.Run("the Hub manifest: 200 with the forwarded claims, 401, 403", func(t *testing.T) {
		admin := k.token(t, "app-admin", "app-admin-secret")
		r := k.call(t, http.MethodGet, "api.example.com", "/anything", admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		e := r.echoed(t)
		assert.Equal(t, "admin", http.Header(e.Headers).Get("Group"))
		assert.Regexp(t, `^[0-9]{10}$`, http.Header(e.Headers).Get("Expires-At"))
		assert.Empty(t, http.Header(e.Headers).Get("Authorization"), "the token went on to the backend")

		assert.Equal(t, http.StatusUnauthorized, k.call(t, http.MethodGet, "api.example.com", "/", "").status)
		assert.Equal(t, http.StatusUnauthorized, k.call(t, http.MethodGet, "api.example.com", "/", "not-a-token-the-idp-issued").status)
		user := k.token(t, "app-user", "app-user-secret")
		assert.Equal(t, http.StatusForbidden, k.call(t, http.MethodGet, "api.example.com", "/", user).status)
	})

	t.Run("Keycloak's claims: realm and client roles, azp, preferred_username, aud as a string or an array", func(t *testing.T) {
		admin := k.token(t, "app-admin", "app-admin-secret") // aud: ["orders-api", "account"]
		user := k.token(t, "app-user", "app-user-secret")    // aud: "orders-api"
		for _, c := range []struct {
			token, client string
		}{{admin, "app-admin"}, {user, "app-user"}} {
			r := k.call(t, http.MethodGet, "orders.example.com", "/orders", c.token)
			require.Equal(t, http.StatusOK, r.status, "%s: %s", c.client, r.body)
			e := r.echoed(t)
			assert.Equal(t, "service-account-"+c.client, http.Header(e.Headers).Get("X-User"))
			assert.Equal(t, c.client, http.Header(e.Headers).Get("X-Client"))
			assert.Contains(t, http.Header(e.Headers).Get("X-Realm-Roles"), "offline_access")
			assert.Contains(t, http.Header(e.Headers).Get("X-Audience"), "orders-api")
		}
		r := k.call(t, http.MethodPost, "orders.example.com", "/orders", admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, http.StatusForbidden, k.call(t, http.MethodPost, "orders.example.com", "/orders", user).status,
			"app-user has neither orders:write nor the realm role admin")
	})

	t.Run("the client credentials and the CA come from the Secret through urn:k8s:secret", func(t *testing.T) {
		admin := k.token(t, "app-admin", "app-admin-secret")
		r := k.call(t, http.MethodGet, "api-secret.example.com", "/", admin)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "Alice Admin", http.Header(r.echoed(t).Headers).Get("X-User-Name"))

		// A wrong secret in the Secret, through a watch event: the IdP refuses the middleware's
		// client, which fails closed with 503. Another CA in it: the middleware trusts the
		// Secret's CA alone, not the system's (which trusts the IdP here), so it cannot reach the
		// IdP: 503. Each restored: 200.
		wrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("example:wrong"))
		k.whileChanged(t, "middleware.yaml", "authorization: Basic ZXhhbXBsZTpleGFtcGxl", "authorization: "+wrong,
			"api-secret.example.com", http.StatusServiceUnavailable)
		otherCA, _, _ := writeServerCert(t, t.TempDir())
		k.whileChanged(t, "middleware.yaml", indent(string(k.caPEM), "    "), indent(string(otherCA), "    "),
			"api-secret.example.com", http.StatusServiceUnavailable)
	})

	t.Run("a Middleware update reaches Traefik through a watch event", func(t *testing.T) {
		admin := k.token(t, "app-admin", "app-admin-secret")
		user := k.token(t, "app-user", "app-user-secret")
		good := k.read(t, "middleware.yaml")
		k.write(t, "middleware.yaml", replaceOnce(t, good, "claims: Equals(`grp`, `admin`)\n", "claims: Equals(`grp`, `user`)\n"))
		eventually(t, reloadTimeout, func() bool {
			return k.status(http.MethodGet, "api.example.com", "/", user) == http.StatusOK &&
				k.status(http.MethodGet, "api.example.com", "/", admin) == http.StatusForbidden
		}, "the changed claims did not take effect")
		k.write(t, "middleware.yaml", good)
		eventually(t, reloadTimeout, func() bool {
			return k.status(http.MethodGet, "api.example.com", "/", admin) == http.StatusOK &&
				k.status(http.MethodGet, "api.example.com", "/", user) == http.StatusForbidden
		}, "the restored claims did not take effect")
	})

	t.Run("a bad Middleware disables only its own route", func(t *testing.T) {
		broken := strings.ReplaceAll(`apiVersion: traefik.io/v1alpha1
kind: Middleware
metadata: {name: broken-claims, namespace: apps}
spec:
  plugin:
    oAuthIntrospection:
      tokenSource: {header: Authorization, headerAuthScheme: Bearer}
      clientConfig: {url: "ISSUER/protocol/openid-connect/token/introspect"}
      claims: Equals(~grp~
---
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: {name: broken, namespace: apps}
spec:
  entryPoints: [web]
  routes:
    - match: Host(~broken.example.com~)
      kind: Rule
      middlewares: [{name: broken-claims}]
      services: [{name: whoami, port: 80}]
`, "~", "`")
		k.write(t, "broken.yaml", strings.ReplaceAll(broken, "ISSUER", k.issuer))
		t.Cleanup(func() { _ = os.Remove(filepath.Join(k.manifests, "broken.yaml")) })
		// Traefik names the option, and the router it disabled.
		eventually(t, reloadTimeout, func() bool {
			_, found := fileLine(k.traefikLog, ` error="claims: offset `, "routerName=apps-broken-")
			return found
		}, "Traefik never reported the broken claims on the broken route's router")
		admin := k.token(t, "app-admin", "app-admin-secret")
		assert.Equal(t, http.StatusNotFound, k.status(http.MethodGet, "broken.example.com", "/", admin), "the broken route is served")
		assert.Equal(t, http.StatusOK, k.status(http.MethodGet, "api.example.com", "/", admin), "a good route went down with the bad one")
		assert.Equal(t, http.StatusOK, k.status(http.MethodGet, "orders.example.com", "/", admin))
	})
}

// startKube starts the IdP, the API server and Traefik, and waits until the Hub route
// challenges a request without a token. Cleanup stops them.
func startKube(t *testing.T) *kubeEnv {
	t.Helper()
	k := &kubeEnv{dir: filepath.Join(env.workDir, "k8s")}
	k.manifests = filepath.Join(k.dir, "manifests")
	k.traefikLog = filepath.Join(k.dir, "traefik.log")
	require.NoError(t, os.MkdirAll(k.manifests, 0o755))
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"traefik.log", "kubeapi.log", "keycloak.log"} {
				t.Logf("\n%s", tailOf(filepath.Join(k.dir, name), 40))
			}
		}
	})

	caPEM, certFile, keyFile := writeServerCert(t, k.dir)
	k.caPEM = caPEM
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	k.idpClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	caFile := filepath.Join(k.dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, caPEM, 0o644))

	idp, issuer, err := startIdP(filepath.Join(env.e2eDir, "idp"), k.dir, "keycloak",
		"IDP_REALM="+keycloakRealm, "IDP_TLS_CERT_FILE="+certFile, "IDP_TLS_KEY_FILE="+keyFile)
	if idp != nil {
		t.Cleanup(idp.stop)
	}
	require.NoError(t, err)
	k.issuer = issuer
	require.Equal(t, "/realms/"+keycloakRealm, mustURL(t, issuer).Path)

	k.applyDemo(t, caPEM)

	bin := filepath.Join(k.dir, "kubeapi")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(env.e2eDir, "kubeapi")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	require.NoError(t, runWithTimeout(build, 5*time.Minute), "building kubeapi")
	api, apiURL, err := startReady("kubeapi", exec.Command(bin, "-dir", k.manifests), filepath.Join(k.dir, "kubeapi.log"), "KUBEAPI_READY ", 30*time.Second)
	if api != nil {
		t.Cleanup(api.stop)
	}
	require.NoError(t, err)

	// Out of a cluster, with the endpoint given, and trusting the IdP's CA as a cluster's nodes
	// trust a public one: the Hub Middleware names no CA of its own.
	environ := []string{"SSL_CERT_FILE=" + caFile}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBERNETES_SERVICE_") && !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "SSL_CERT_") {
			environ = append(environ, kv)
		}
	}
	traefik, webURL, _ := startOwnTraefik(t, k.dir, fmt.Sprintf("  providersThrottleDuration: 500ms\n  kubernetesCRD:\n    endpoint: %q\n", apiURL), environ)
	k.webURL = webURL
	eventually(t, traefikStartTimeout, func() bool {
		return !traefik.exited() && k.status(http.MethodGet, "api.example.com", "/", "") == http.StatusUnauthorized
	}, "Traefik never served the Hub IngressRoute from the kubernetesCRD provider")
	return k
}

// startOwnTraefik starts a Traefik of a test's own in dir: a copy of the plugin, a web entrypoint on
// a free port, a DEBUG log in dir/traefik.log, and providers (YAML, indented under "providers:").
// It returns the web URL and the log's path; cleanup stops it, and shows the log's tail if the
// test failed.
func startOwnTraefik(t *testing.T, dir, providers string, environ []string) (*process, string, string) {
	t.Helper()
	require.NoError(t, copyPlugin(env.repoRoot, filepath.Join(dir, "plugins-local", "src", filepath.FromSlash(pluginModule))))
	port, err := freePort()
	require.NoError(t, err)
	logPath := filepath.Join(dir, "traefik.log")
	static := fmt.Sprintf(`# Static configuration written by %s.
global: {checkNewVersion: false, sendAnonymousUsage: false}
entryPoints:
  web: {address: "127.0.0.1:%d"}
log: {level: DEBUG, noColor: true, filePath: %q}
experimental:
  localPlugins:
    oAuthIntrospection: {moduleName: %s}
providers:
%s`, t.Name(), port, logPath, pluginModule, providers)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "traefik.yml"), []byte(static), 0o644))
	p, err := runTraefik(env.traefikBin, dir, filepath.Join(dir, "traefik.out"), environ)
	require.NoError(t, err)
	t.Cleanup(p.stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("\n%s", tailOf(logPath, 30))
		}
	})
	return p, fmt.Sprintf("http://127.0.0.1:%d", port), logPath
}

// applyDemo writes demo/kubernetes/'s manifests into the served directory with the IdP's address
// and CA, and the EndpointSlice of the whoami Service, pointing at the echo backend.
func (k *kubeEnv) applyDemo(t *testing.T, caPEM []byte) {
	t.Helper()
	for _, name := range demoManifests {
		raw, err := os.ReadFile(filepath.Join(env.repoRoot, "demo", "kubernetes", name))
		require.NoError(t, err)
		s := strings.ReplaceAll(string(raw), "https://YOUR-KEYCLOAK-ADDRESS/realms/YOUR-REALM", k.issuer)
		require.NotContains(t, s, "YOUR-", "%s: a placeholder is left", name)
		if name == "middleware.yaml" {
			placeholder := "    -----BEGIN CERTIFICATE-----\n    ...the CA certificate (PEM) of the IdP's TLS certificate...\n    -----END CERTIFICATE-----\n"
			s = replaceOnce(t, s, placeholder, indent(string(caPEM), "    "))
		}
		k.write(t, name, s)
	}
	port := mustURL(t, env.backend.URL).Port()
	k.write(t, "endpointslice.yaml", fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: whoami-7d9c5
  namespace: apps
  labels:
    kubernetes.io/service-name: whoami
addressType: IPv4
ports:
  - name: ""
    port: %s
    protocol: TCP
endpoints:
  - addresses: ["127.0.0.1"]
    conditions: {ready: true, serving: true}
`, port))
}

// whileChanged replaces old by changed in the manifest name, waits until a new app-admin token
// gets want on host, then restores the manifest and waits until one gets 200 again.
func (k *kubeEnv) whileChanged(t *testing.T, name, old, changed, host string, want int) {
	t.Helper()
	good := k.read(t, name)
	for _, step := range []struct {
		content string
		want    int
	}{{replaceOnce(t, good, old, changed), want}, {good, http.StatusOK}} {
		k.write(t, name, step.content)
		eventually(t, reloadTimeout, func() bool {
			return k.status(http.MethodGet, host, "/", k.token(t, "app-admin", "app-admin-secret")) == step.want
		}, "%s on %s never answered %d after %s changed", host, name, step.want, name)
	}
}

func (k *kubeEnv) read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k.manifests, name))
	require.NoError(t, err)
	return string(b)
}

// write replaces a manifest at once (kubeapi never reads it half written).
func (k *kubeEnv) write(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, writeFileAtomic(filepath.Join(k.manifests, name), []byte(content), 0o644))
}

// token gets a client_credentials token as the Hub page's curl does: a form POST to the realm's
// token endpoint with client_id and client_secret.
func (k *kubeEnv) token(t *testing.T, clientID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}}
	resp, err := k.idpClient.PostForm(k.issuer+"/protocol/openid-connect/token", form)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "token: %s", body)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.Unmarshal(body, &tr))
	require.NotEmpty(t, tr.AccessToken)
	issuedMu.Lock()
	issued = append(issued, tr.AccessToken)
	issuedMu.Unlock()
	return tr.AccessToken
}

func (k *kubeEnv) request(method, host, path, tok string) (*http.Request, error) {
	req, err := http.NewRequest(method, k.webURL+path, nil)
	if err != nil {
		return nil, err
	}
	req.Host = host
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return req, nil
}

// call sends a request through the Kubernetes Traefik to host.
func (k *kubeEnv) call(t *testing.T, method, host, path, tok string) response {
	t.Helper()
	req, err := k.request(method, host, path, tok)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// status is call for polls: only the status, 0 on a transport error.
func (k *kubeEnv) status(method, host, path, tok string) int {
	req, err := k.request(method, host, path, tok)
	if err != nil {
		return 0
	}
	return statusOfRequest(req)
}

// writeServerCert writes a CA and a certificate for 127.0.0.1 signed by it into dir, and returns
// the CA's PEM and the files of the certificate and its key.
func writeServerCert(t *testing.T, dir string) (caPEM []byte, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e Keycloak CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "idp.crt"), filepath.Join(dir, "idp.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "expected exactly one %q", old)
	return strings.Replace(s, old, new, 1)
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// tailOf returns the last lines of a file, for a failing test's log.
func tailOf(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path + ": " + err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return fmt.Sprintf("---- last %d lines of %s ----\n%s", len(all), path, strings.Join(all, "\n"))
}
