package e2e

import (
	"encoding/base64"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdPOutageCircuitBreaker stops an IdP of its own under a live Traefik and starts it again on
// the same port: misses fail until the breaker opens, then get 503 with Retry-After at once;
// cached tokens keep passing; the first miss after the IdP is back (the probe) closes the breaker.
// Traefik logs one line when it opens and one when it closes.
func TestIdPOutageCircuitBreaker(t *testing.T) {
	setupTest(t)
	port, err := freePort()
	require.NoError(t, err)
	idpDir := filepath.Join(env.e2eDir, "idp")
	idp, idpURL, err := startIdP(idpDir, env.workDir, "idp-breaker", "IDP_PORT="+strconv.Itoa(port))
	require.NoError(t, err)
	t.Cleanup(idp.stop)

	router := "    breaker:\n" +
		"      entryPoints: [web]\n" +
		"      rule: \"PathPrefix(`/breaker`)\"\n" +
		"      service: echo\n" +
		"      middlewares: [breaker]\n"
	middleware := "    breaker:\n" +
		"      plugin:\n" +
		"        oAuthIntrospection:\n" +
		"          tokenSource: {header: Authorization, headerAuthScheme: Bearer}\n" +
		"          clientConfig:\n" +
		"            url: \"" + idpURL + "/token/introspection\"\n" +
		"            headers: {Authorization: \"Basic " + base64.StdEncoding.EncodeToString([]byte("rs-basic:rs-basic-secret")) + "\"}\n" +
		"            timeoutSeconds: 2\n" +
		"            maxRetries: 1\n" +
		"            circuitBreaker: {consecutiveFailures: 4, openSeconds: 2}\n" +
		"          claims: \"Equals(`grp`, `admin`)\"\n" +
		"          cache: {ttlSeconds: 120}\n"
	t.Cleanup(func() {
		if err := env.writeDynamic("", ""); err != nil {
			t.Errorf("restoring the dynamic configuration: %v", err)
		}
	})
	require.NoError(t, env.writeDynamic(router, middleware))
	cached := token(t, idpURL, "app-admin", "app-admin-secret", "api:read")
	eventually(t, reloadTimeout, func() bool { return statusOf("/breaker/x", bearer(cached)) == http.StatusOK },
		"the breaker router did not go live")
	unseen := make([]string, 30)
	for i := range unseen {
		unseen[i] = token(t, idpURL, "app-admin", "app-admin-secret", "api:read")
	}

	idp.stop()
	require.True(t, idp.exited())
	// Closed: each miss tries twice (maxRetries 1) against the refused port, and counts as one
	// failed introspection; the fourth opens the breaker.
	for i := 0; i < 4; i++ {
		r := call(t, "/breaker/x", bearer(unseen[i]))
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Empty(t, r.header.Get("Retry-After"), "miss %d: the IdP was called, the breaker was closed", i)
	}
	// Open: refused at once, with Retry-After, on a route whose token was never seen.
	var took []time.Duration
	for i := 4; i < len(unseen); i++ {
		start := time.Now()
		r := call(t, "/breaker/x", bearer(unseen[i]))
		took = append(took, time.Since(start))
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Contains(t, []string{"1", "2"}, r.header.Get("Retry-After"), "refusal %d", i)
		assert.NotContains(t, string(r.body), "\"headers\"", "the backend must not be reached")
	}
	sort.Slice(took, func(a, b int) bool { return took[a] < took[b] })
	t.Logf("%d refusals with the breaker open: median %v, slowest %v", len(took), took[len(took)/2], took[len(took)-1])
	assert.Less(t, took[len(took)-1], 250*time.Millisecond, "a refusal must not wait for the IdP")
	// Cached answers keep passing; no token is still 401.
	assert.Equal(t, http.StatusOK, call(t, "/breaker/x", bearer(cached)).status)
	assert.Equal(t, http.StatusUnauthorized, call(t, "/breaker/x", nil).status)
	eventually(t, logTimeout, func() bool {
		_, ok := fileLine(env.traefikLog, "oAuthIntrospection[breaker@file]", "IdP circuit breaker opened after 4 consecutive failed introspections (last: request failed: connection refused)")
		return ok
	}, "traefik log has no line saying the breaker opened")

	// The IdP comes back on the same port, with its memory empty: a token it issues now passes
	// once the breaker's probe has gone through.
	idp2, _, err := startIdP(idpDir, env.workDir, "idp-breaker-restarted", "IDP_PORT="+strconv.Itoa(port))
	require.NoError(t, err)
	t.Cleanup(idp2.stop)
	fresh := token(t, idpURL, "app-admin", "app-admin-secret", "api:read")
	back := time.Now()
	eventually(t, 10*time.Second, func() bool { return statusOf("/breaker/x", bearer(fresh)) == http.StatusOK },
		"the breaker did not close after the IdP came back")
	t.Logf("the first miss passed %v after the IdP was back (openSeconds 2)", time.Since(back).Round(time.Millisecond))
	assert.Less(t, time.Since(back), 5*time.Second)
	eventually(t, logTimeout, func() bool {
		line, ok := fileLine(env.traefikLog, "oAuthIntrospection[breaker@file]", "IdP circuit breaker closed: the IdP answered again after ")
		return ok && assert.Regexp(t, `\d+ misses were refused while it was open`, line)
	}, "traefik log has no line saying the breaker closed")
	assert.False(t, env.traefik.exited())
}
