//go:build unix

package e2e

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// wrongSecretMarker is the inline clientSecret of ca-wrong-secret (testdata/dynamic.yml.tmpl).
const wrongSecretMarker = "wrong-secret-marker"

// 11. Client authentication to the introspection endpoint (clientConfig.clientId and friends):
// every method the IdP supports works without static headers, a refused client is a 503 whose
// cause the log names, and secrets stay out of the log.
func TestClientAuth(t *testing.T) {
	setupTest(t)

	for _, c := range []struct{ name, route string }{
		{"client_secret_basic", "/ca-basic/x"},
		{"client_secret_post from clientSecretFile", "/ca-post/x"},
		{"private_key_jwt RS256", "/ca-jwt-rs/x"},
		{"private_key_jwt ES256", "/ca-jwt-es/x"},
	} {
		t.Run(c.name, func(t *testing.T) {
			admin := adminToken(t)
			// The cache is off, so each call reaches the IdP; with private_key_jwt the second one
			// needs a new assertion (the IdP refuses a replayed jti).
			for i := 0; i < 2; i++ {
				r := call(t, c.route, bearer(admin))
				require.Equal(t, http.StatusOK, r.status, "call %d: %s", i+1, r.body)
				assert.Equal(t, []string{"admin"}, r.echoed(t).Headers["Group"])
			}
			// The IdP's real answers, not a default: another client's token fails the claims,
			// and an unknown one is inactive.
			r := call(t, c.route, bearer(userToken(t)))
			assert.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
			r = call(t, c.route, bearer("not-a-token-the-idp-issued"))
			assert.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
			assert.Equal(t, challengeInvalid, r.header.Get("WWW-Authenticate"))
		})
	}

	t.Run("wrong secret is a 503 and the log names invalid_client", func(t *testing.T) {
		r := call(t, "/ca-wrong-secret/x", bearer(adminToken(t)))
		requireIdPRefused(t, r, "ca-wrong-secret@file")
		assert.NotContains(t, string(r.body), wrongSecretMarker)
		// No token is still a 401: the IdP is not asked.
		assert.Equal(t, http.StatusUnauthorized, call(t, "/ca-wrong-secret/x", nil).status)

		// The inline secret is in Traefik's DEBUG dump of the dynamic configuration (documented:
		// that is why clientSecretFile exists), and nowhere else.
		for _, path := range []string{env.traefikLog, env.traefikOutput} {
			for _, line := range fileLines(path, wrongSecretMarker) {
				assert.True(t, strings.Contains(line, " DBG ") && strings.Contains(line, "Configuration received"),
					"the inline secret is logged outside the DEBUG configuration dump (%s): %.300s", path, line)
			}
		}
		idpReason(t, "rs-basic")
	})

	t.Run("private_key_jwt with a key the IdP does not know is a 503", func(t *testing.T) {
		r := call(t, "/ca-jwt-unknown/x", bearer(adminToken(t)))
		requireIdPRefused(t, r, "ca-jwt-unknown@file")
		idpReason(t, "rs-jwt")
	})

	t.Run("clientSecretFile is re-read when it changes", func(t *testing.T) {
		// ca-rotate starts with a wrong secret in its file. Write it again so that the test also
		// holds when run twice in one process, then fix the file: the plugin checks it at most
		// every 5 s, from the request path.
		admin := adminToken(t)
		require.NoError(t, writeFileAtomic(env.auth.rotatingSecret, []byte(env.auth.rotatingWrong+"\n"), 0o600))
		pollStatus(t, "/ca-rotate/x", admin, http.StatusServiceUnavailable, "the wrong secret in the file was not used")
		requireIdPRefused(t, call(t, "/ca-rotate/x", bearer(admin)), "ca-rotate@file")

		require.NoError(t, writeFileAtomic(env.auth.rotatingSecret, []byte(rsPostSecret+"\n"), 0o600))
		pollStatus(t, "/ca-rotate/x", admin, http.StatusOK, "the fixed secret file was not picked up")
		r := call(t, "/ca-rotate/x", bearer(admin))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, []string{"admin"}, r.echoed(t).Headers["Group"])
	})

	t.Run("secrets from files are logged nowhere", func(t *testing.T) {
		assertFileSecretsNotLogged(t)
	})
}

// requireIdPRefused checks the answer to a request whose middleware the IdP refuses: a 503 without
// challenge that never reaches the backend, and an ERROR line of the plugin naming invalid_client.
func requireIdPRefused(t *testing.T, r response, middleware string) {
	t.Helper()
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Empty(t, r.header.Get("WWW-Authenticate"), "a refused gateway is not the client's fault")
	assert.NotContains(t, string(r.body), "\"headers\"", "the backend must not be reached")

	prefix := "oAuthIntrospection[" + middleware + "]"
	var lines []string
	eventually(t, logTimeout, func() bool {
		lines = fileLines(env.traefikLog, prefix, "introspection failed: ")
		return len(lines) > 0
	}, "traefik log has no introspection failure for %s", middleware)
	for _, line := range lines {
		assert.Contains(t, line, "endpoint answered 401 (invalid_client)", line)
		assert.Contains(t, line, " ERR ", "the plugin logs a refused gateway at ERROR: %s", line)
		assert.NotContains(t, line, wrongSecretMarker, line)
		assert.NotContains(t, line, env.auth.rotatingWrong, line)
		assert.NotContains(t, line, rsPostSecret, line)
	}
	t.Logf("traefik log: %s", strings.TrimSpace(lines[len(lines)-1]))
}

// assertFileSecretsNotLogged checks that the secrets the plugin reads from clientSecretFile, and the
// private keys it reads from privateKeyFile, show in none of Traefik's logs, DEBUG included.
func assertFileSecretsNotLogged(t *testing.T) {
	t.Helper()
	secrets := []string{rsPostSecret, env.auth.rotatingWrong}
	for _, keyFile := range []string{env.auth.rsaKey, env.auth.ecKey, env.auth.unknownKey} {
		pemText, err := os.ReadFile(keyFile)
		require.NoError(t, err)
		// The first line of base64 after the BEGIN line is unique to the key.
		lines := strings.Split(string(pemText), "\n")
		require.Greater(t, len(lines), 2, keyFile)
		secrets = append(secrets, lines[1])
	}
	for _, path := range []string{env.traefikLog, env.traefikOutput, env.accessLog} {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, secret := range secrets {
			assert.NotContains(t, string(data), secret, "a secret or key read from a file is in %s", path)
		}
	}
}

// idpReason logs the IdP's own account of why it refused clientID (its stderr names the cause the
// HTTP answer hides).
func idpReason(t *testing.T, clientID string) {
	t.Helper()
	if lines := fileLines(env.idpLog, "introspection.error", " "+clientID+" "); len(lines) > 0 {
		t.Logf("idp log: %s", strings.TrimSpace(lines[len(lines)-1]))
	}
}

// pollStatus polls path with tok until it answers want. It polls slowly: every miss here is an
// introspection call the IdP refuses and an ERROR line in Traefik's log.
func pollStatus(t *testing.T, path, tok string, want int, msg string) {
	t.Helper()
	const timeout = 20 * time.Second
	deadline := time.Now().Add(timeout)
	for statusOf(path, bearer(tok)) != want {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s (%s did not answer %d)", timeout, msg, path, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fileLines returns every line of the file at path that contains all of subs.
func fileLines(path string, subs ...string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		ok := line != ""
		for _, s := range subs {
			if !strings.Contains(line, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}
