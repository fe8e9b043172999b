//go:build unix

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	challengeMissing = `Bearer realm="traefik"`
	challengeInvalid = `Bearer realm="traefik", error="invalid_token"`
	challengeScope   = `Bearer realm="traefik", error="insufficient_scope"`
)

// 1. The Traefik Hub manifest: a valid admin token passes, no token and a revoked token do not.
func TestHubManifest(t *testing.T) {
	setupTest(t)

	t.Run("admin token passes", func(t *testing.T) {
		r := call(t, "/hub/resource", bearer(adminToken(t)))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.Equal(t, "/hub/resource", r.echoed(t).Path)
	})

	t.Run("no token is challenged", func(t *testing.T) {
		r := call(t, "/hub/resource", nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, []string{challengeMissing}, r.header.Values("WWW-Authenticate"))
		assert.NotContains(t, string(r.body), "\"headers\"", "the backend must not be reached")
	})

	t.Run("another auth scheme is no token", func(t *testing.T) {
		r := call(t, "/hub/resource", func(req *http.Request) { req.SetBasicAuth("alice", "secret") })
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, challengeMissing, r.header.Get("WWW-Authenticate"))
	})

	t.Run("unknown token is invalid", func(t *testing.T) {
		r := call(t, "/hub/resource", bearer("not-a-token-the-idp-issued"))
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, challengeInvalid, r.header.Get("WWW-Authenticate"))
	})

	t.Run("revoked token is invalid", func(t *testing.T) {
		// Revoked before its first use, so no cached answer can stand in for the IdP's.
		tok := adminToken(t)
		revoke(t, env.idpURL, "app-admin", "app-admin-secret", tok)
		r := call(t, "/hub/resource", bearer(tok))
		require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
		assert.Equal(t, challengeInvalid, r.header.Get("WWW-Authenticate"))
		assert.Equal(t, "no-store", r.header.Get("Cache-Control"))
	})

	t.Run("revocation is seen at once without the cache", func(t *testing.T) {
		tok := adminToken(t)
		require.Equal(t, http.StatusOK, call(t, "/nocache/x", bearer(tok)).status)
		revoke(t, env.idpURL, "app-admin", "app-admin-secret", tok)
		r := call(t, "/nocache/x", bearer(tok))
		require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
		assert.Equal(t, challengeInvalid, r.header.Get("WWW-Authenticate"))
	})

	t.Run("revocation is seen when the cached answer expires", func(t *testing.T) {
		// cache.ttlSeconds is 3 on this route; the cache counts in whole seconds, so an answer is
		// reused for more than 2 s after it was fetched.
		tok := adminToken(t)
		first := time.Now()
		require.Equal(t, http.StatusOK, call(t, "/short/x", bearer(tok)).status)
		revoke(t, env.idpURL, "app-admin", "app-admin-secret", tok)
		st := call(t, "/short/x", bearer(tok)).status
		if time.Since(first) < 1500*time.Millisecond {
			assert.Equal(t, http.StatusOK, st, "a fresh cached answer is reused")
		}
		eventually(t, 10*time.Second, func() bool { return statusOf("/short/x", bearer(tok)) == http.StatusUnauthorized },
			"the revoked token still passes after the cache TTL")
		r := call(t, "/short/x", bearer(tok))
		assert.Equal(t, challengeInvalid, r.header.Get("WWW-Authenticate"))
	})
}

// 2. Claims expressions over the IdP's custom claims (strings, nested objects, arrays).
func TestClaims(t *testing.T) {
	setupTest(t)
	admin, user := adminToken(t), userToken(t)

	for _, route := range []string{"/hub/x", "/claims/x"} {
		t.Run("admin passes "+route, func(t *testing.T) {
			r := call(t, route, bearer(admin))
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		})
		t.Run("user is forbidden "+route, func(t *testing.T) {
			r := call(t, route, bearer(user))
			require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
			assert.Equal(t, challengeScope, r.header.Get("WWW-Authenticate"))
		})
	}

	t.Run("nested and array claims are forwarded", func(t *testing.T) {
		e := call(t, "/claims/x", bearer(admin)).echoed(t)
		assert.Equal(t, []string{"Alice Admin"}, e.Headers["User-Name"])
		assert.Equal(t, []string{"office,home"}, e.Headers["Areas"])
	})
}

// 3. forwardHeaders reach the backend and replace what the client sent.
func TestForwardHeaders(t *testing.T) {
	setupTest(t)
	before := time.Now().Unix()
	r := call(t, "/hub/x", func(req *http.Request) {
		req.Header.Set("Authorization", "Bearer "+adminToken(t))
		req.Header.Set("Group", "root")
		req.Header.Add("Group", "wheel")
		req.Header.Set("Expires-At", "99999999999")
	})
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	e := r.echoed(t)

	assert.Equal(t, []string{"admin"}, e.Headers["Group"], "the client's Group must be replaced")
	require.Len(t, e.Headers["Expires-At"], 1)
	exp := e.Headers["Expires-At"][0]
	require.Regexp(t, regexp.MustCompile(`^[0-9]+$`), exp, "exp must be an integer without exponent")
	n, err := strconv.ParseInt(exp, 10, 64)
	require.NoError(t, err)
	assert.Greater(t, n, before, "exp is in the future")
	assert.Less(t, n, before+2*3600, "exp is about an hour away")
}

// 4. The token does not reach the backend, unless forwardAuthorization is set.
func TestAuthorizationForwarding(t *testing.T) {
	setupTest(t)
	tok := adminToken(t)

	t.Run("stripped by default", func(t *testing.T) {
		r := call(t, "/hub/x", bearer(tok))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		e := r.echoed(t)
		assert.NotContains(t, e.Headers, "Authorization")
		assert.NotContains(t, string(r.body), tok)
	})

	t.Run("kept with forwardAuthorization", func(t *testing.T) {
		r := call(t, "/fwdauth/x", bearer(tok))
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		e := r.echoed(t)
		assert.Equal(t, []string{"Bearer " + tok}, e.Headers["Authorization"])
		assert.Equal(t, []string{"admin"}, e.Headers["Group"])
	})
}

// 5. Query and cookie token sources; the credential is removed before the backend.
func TestQueryAndCookieSources(t *testing.T) {
	setupTest(t)
	tok := adminToken(t)

	t.Run("query", func(t *testing.T) {
		r := call(t, "/query/x?keep=1&access_token="+tok+"&also=a%20b", nil)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		e := r.echoed(t)
		assert.Equal(t, "keep=1&also=a%20b", e.RawQuery)
		assert.NotContains(t, e.RequestURI, "access_token")
		assert.NotContains(t, string(r.body), tok)
		assert.Equal(t, []string{"admin"}, e.Headers["Group"])
	})

	t.Run("query without token", func(t *testing.T) {
		r := call(t, "/query/x?keep=1", nil)
		require.Equal(t, http.StatusUnauthorized, r.status)
		assert.Equal(t, challengeMissing, r.header.Get("WWW-Authenticate"))
	})

	t.Run("query header is not a source", func(t *testing.T) {
		r := call(t, "/query/x", bearer(tok))
		require.Equal(t, http.StatusUnauthorized, r.status)
	})

	t.Run("cookie", func(t *testing.T) {
		r := call(t, "/x", func(req *http.Request) {
			req.Host = "cookie.test"
			req.Header.Set("Cookie", "theme=dark; session="+tok+"; lang=en")
		})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		e := r.echoed(t)
		assert.Equal(t, []string{"theme=dark; lang=en"}, e.Headers["Cookie"])
		assert.NotContains(t, string(r.body), tok)
		assert.Equal(t, []string{"admin"}, e.Headers["Group"])
	})

	t.Run("cookie alone", func(t *testing.T) {
		r := call(t, "/x", func(req *http.Request) {
			req.Host = "cookie.test"
			req.Header.Set("Cookie", "session="+tok)
		})
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		assert.NotContains(t, r.echoed(t).Headers, "Cookie")
	})

	t.Run("cookie without token", func(t *testing.T) {
		r := call(t, "/x", func(req *http.Request) {
			req.Host = "cookie.test"
			req.Header.Set("Cookie", "theme=dark")
		})
		require.Equal(t, http.StatusUnauthorized, r.status)
	})
}

// 6. The IdP goes away: 503 on its route, while Traefik keeps serving everything else.
func TestIdPDown(t *testing.T) {
	setupTest(t)
	seen := token(t, env.idp2URL, "app-admin", "app-admin-secret", "api:read")
	unseen := token(t, env.idp2URL, "app-admin", "app-admin-secret", "api:read")
	r := call(t, "/down/x", bearer(seen))
	require.Equal(t, http.StatusOK, r.status, "the second IdP must work before it is stopped: %s", r.body)
	cachedAt := time.Now()

	env.idp2.stop()
	require.True(t, env.idp2.exited())

	start := time.Now()
	r = call(t, "/down/x", bearer(unseen))
	took := time.Since(start)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
	assert.Empty(t, r.header.Get("WWW-Authenticate"), "an IdP failure is not the client's fault")
	assert.NotContains(t, string(r.body), "\"headers\"", "the backend must not be reached")
	assert.Less(t, took, 3*time.Second, "the 503 must come within clientConfig.timeoutSeconds")
	eventually(t, logTimeout, func() bool {
		_, ok := fileLine(env.traefikLog, "oAuthIntrospection[down@file]", "introspection failed")
		return ok
	}, "traefik log has no introspection failure for down@file")

	// The token introspected before the IdP stopped is still in the cache (ttlSeconds: 60).
	if time.Since(cachedAt) < 30*time.Second {
		assert.Equal(t, http.StatusOK, call(t, "/down/x", bearer(seen)).status, "a fresh cached answer is reused")
	}
	// No token is still a 401: the IdP is not needed to say so.
	assert.Equal(t, http.StatusUnauthorized, call(t, "/down/x", nil).status)
	// Traefik keeps serving the other routes.
	assert.Equal(t, http.StatusOK, call(t, "/open/x", nil).status)
	assert.Equal(t, http.StatusOK, call(t, "/hub/x", bearer(adminToken(t))).status)
	assert.False(t, env.traefik.exited())
}

// 7. usernameClaim shows in Traefik's access log as ClientUsername.
func TestUsernameInAccessLog(t *testing.T) {
	setupTest(t)
	path := "/username/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r := call(t, path, bearer(adminToken(t)))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	// The user is for the access log only: nothing in the request headers names it.
	assert.NotContains(t, r.echoed(t).Headers, "Authorization")

	var line string
	eventually(t, logTimeout, func() bool {
		var ok bool
		line, ok = fileLine(env.accessLog, `"RequestPath":"`+path+`"`)
		return ok
	}, "no access log line for %s in %s", path, env.accessLog)
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &entry), line)
	assert.Equal(t, "alice", entry["ClientUsername"], line)
	assert.Equal(t, "username@file", entry["RouterName"], line)

	// A route without usernameClaim logs no user.
	path2 := "/hub/" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.Equal(t, http.StatusOK, call(t, path2, bearer(adminToken(t))).status)
	eventually(t, logTimeout, func() bool {
		var ok bool
		line, ok = fileLine(env.accessLog, `"RequestPath":"`+path2+`"`)
		return ok
	}, "no access log line for %s", path2)
	entry = nil
	require.NoError(t, json.Unmarshal([]byte(line), &entry), line)
	assert.Equal(t, "-", entry["ClientUsername"], line)
}

// 8. A middleware with a bad option disables only its own router, and the log says why.
func TestBadOptionDisablesOnlyItsRouter(t *testing.T) {
	setupTest(t)
	tok := adminToken(t)

	assert.Equal(t, http.StatusNotFound, call(t, "/broken-claims/x", bearer(tok)).status)
	assert.Equal(t, http.StatusNotFound, call(t, "/broken-url/x", bearer(tok)).status)
	assert.Equal(t, http.StatusOK, call(t, "/hub/x", bearer(tok)).status)
	assert.Equal(t, http.StatusOK, call(t, "/open/x", nil).status)

	for _, c := range []struct{ router, text string }{
		{"broken-claims@file", "claims:"},
		{"broken-url@file", "clientConfig.url"},
	} {
		var line string
		eventually(t, logTimeout, func() bool {
			var ok bool
			line, ok = fileLine(env.traefikLog, c.router, c.text)
			return ok
		}, "traefik log names no error for %s containing %q", c.router, c.text)
		t.Logf("traefik log: %s", strings.TrimSpace(line))
	}
}

// 9. Editing the watched dynamic file adds and changes a plugin middleware without a restart.
func TestConfigReload(t *testing.T) {
	setupTest(t)
	admin, user := adminToken(t), userToken(t)
	require.Equal(t, http.StatusNotFound, call(t, "/reloaded/x", bearer(user)).status)

	router := "    reloaded:\n" +
		"      entryPoints: [web]\n" +
		"      rule: \"PathPrefix(`/reloaded`)\"\n" +
		"      service: echo\n" +
		"      middlewares: [reloaded]\n"
	middleware := func(group string) string {
		return "    reloaded:\n" +
			"      plugin:\n" +
			"        oAuthIntrospection:\n" +
			"          tokenSource:\n" +
			"            header: Authorization\n" +
			"            headerAuthScheme: Bearer\n" +
			"          clientConfig:\n" +
			"            url: \"" + env.idpURL + "/token/introspection\"\n" +
			"            headers:\n" +
			"              Authorization: \"Basic " + base64.StdEncoding.EncodeToString([]byte("rs-basic:rs-basic-secret")) + "\"\n" +
			"          forwardHeaders:\n" +
			"            X-Reloaded-Group: grp\n" +
			"          claims: \"Equals(`grp`, `" + group + "`)\"\n"
	}
	t.Cleanup(func() {
		if err := env.writeDynamic("", ""); err != nil {
			t.Errorf("restoring the dynamic configuration: %v", err)
			return
		}
		eventually(t, reloadTimeout, func() bool { return statusOf("/reloaded/x", nil) == http.StatusNotFound },
			"the restored configuration did not go live")
	})

	// A token whose active answer the hub middleware has cached, then revoked: while the cached
	// answer is fresh (30 s by default) the token still passes, also after a reload that does not
	// change that middleware (the plugin keeps one cache per middleware name and configuration).
	cachedTok := adminToken(t)
	require.Equal(t, http.StatusOK, call(t, "/hub/x", bearer(cachedTok)).status)
	cachedAt := time.Now()
	revoke(t, env.idpURL, "app-admin", "app-admin-secret", cachedTok)

	// Add a router whose middleware admits the user group only.
	require.NoError(t, env.writeDynamic(router, middleware("user")))
	eventually(t, reloadTimeout, func() bool { return statusOf("/reloaded/x", bearer(user)) == http.StatusOK },
		"the added router did not go live")
	r := call(t, "/reloaded/x", bearer(user))
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, []string{"user"}, r.echoed(t).Headers["X-Reloaded-Group"])
	assert.Equal(t, http.StatusForbidden, call(t, "/reloaded/x", bearer(admin)).status)
	assert.Equal(t, http.StatusUnauthorized, call(t, "/reloaded/x", nil).status)
	if time.Since(cachedAt) < 20*time.Second {
		assert.Equal(t, http.StatusOK, call(t, "/hub/x", bearer(cachedTok)).status,
			"an unchanged middleware keeps its cached answers across a reload")
	}

	// Change its claims to the admin group.
	require.NoError(t, env.writeDynamic(router, middleware("admin")))
	eventually(t, reloadTimeout, func() bool { return statusOf("/reloaded/x", bearer(admin)) == http.StatusOK },
		"the changed claims did not go live")
	assert.Equal(t, http.StatusForbidden, call(t, "/reloaded/x", bearer(user)).status)

	// The rest still works after two reloads.
	assert.Equal(t, http.StatusOK, call(t, "/hub/x", bearer(admin)).status)
	assert.Equal(t, http.StatusForbidden, call(t, "/hub/x", bearer(user)).status)
	assert.Equal(t, http.StatusNotFound, call(t, "/broken-claims/x", bearer(admin)).status)
}

// The plugin never writes a token, or a credential it read from a file, to Traefik's log, at DEBUG
// level included. (The access log is another matter: Traefik records the request path with its
// query before any middleware runs, so a token sent as a query parameter shows in RequestPath there.)
func TestTokensNotLogged(t *testing.T) {
	setupTest(t)
	// Make sure the log has the lines of a few more requests, rejected and failed ones included.
	tok := adminToken(t)
	require.Equal(t, http.StatusOK, call(t, "/hub/x", bearer(tok)).status)
	require.Equal(t, http.StatusForbidden, call(t, "/hub/x", bearer(userToken(t))).status)
	require.Equal(t, http.StatusUnauthorized, call(t, "/hub/x", bearer("x"+tok)).status)
	eventually(t, logTimeout, func() bool {
		_, ok := fileLine(env.traefikLog, "oAuthIntrospection[hub@file]", "claims expression is false")
		return ok
	}, "no debug line of the plugin in the traefik log")

	data, err := os.ReadFile(env.traefikLog)
	require.NoError(t, err)
	log := string(data)
	issuedMu.Lock()
	defer issuedMu.Unlock()
	require.NotEmpty(t, issued)
	for _, tok := range issued {
		assert.NotContains(t, log, tok, "a token is in the traefik log")
	}
	// Nor a client secret or private key the plugin read from a file (after every reload).
	assertFileSecretsNotLogged(t)
}

// 11. One middleware on three routers, with four forwarded claims: every router, and every router
// again after a reload of the watched file, forwards each claim under its own header, whether the
// answer is new or cached by another router's handler. Traefik builds one handler per router and
// builds them all again on every reload. A client's copies of the headers, and their underscore
// twins, never reach the backend. A missing claim arrives as an empty header, as in Traefik Hub.
func TestOneMiddlewareOnSeveralRouters(t *testing.T) {
	setupTest(t)
	tokens := make([]string, 3)
	for n := range tokens {
		tokens[n] = token(t, env.idpURL, fmt.Sprintf("app-team-%d", n), fmt.Sprintf("app-team-%d-secret", n), "api:read")
	}
	routes := []struct {
		path string
		host string
	}{{"/shared-a/x", ""}, {"/shared-b/x", ""}, {"/x", "shared-c.test"}}
	checkAll := func(t *testing.T, round string) {
		t.Helper()
		for pass := 0; pass < 2; pass++ {
			for n, tok := range tokens {
				for _, route := range routes {
					r := call(t, route.path, func(req *http.Request) {
						req.Header.Set("Authorization", "Bearer "+tok)
						if route.host != "" {
							req.Host = route.host
						}
						req.Header.Set("X-Role", "admin")
						req.Header["X_role"] = []string{"admin"}
						req.Header["X_user"] = []string{"mallory"}
					})
					require.Equal(t, http.StatusOK, r.status, "%s %s: %s", round, route.path, r.body)
					h := r.echoed(t).Headers
					where := fmt.Sprintf("%s, pass %d, token %d, %s%s", round, pass, n, route.host, route.path)
					assert.Equal(t, []string{fmt.Sprintf("role-%d", n)}, h["X-Role"], where)
					assert.Equal(t, []string{fmt.Sprintf("user-%d", n)}, h["X-User"], where)
					assert.Equal(t, []string{fmt.Sprintf("team-%d", n)}, h["X-Team"], where)
					assert.Equal(t, []string{fmt.Sprintf("mail-%d@example.test", n)}, h["X-Mail"], where)
					assert.Equal(t, []string{""}, h["X-Missing"], where)
					assert.NotContains(t, h, "X_role", where)
					assert.NotContains(t, h, "X_user", where)
					assert.NotContains(t, h, "Authorization", where)
				}
			}
		}
	}
	checkAll(t, "first configuration")

	// A reload that does not touch the middleware: Traefik calls New again for all three routers,
	// and the answers cached before it are read by the new handlers.
	router := "    shared-extra:\n" +
		"      entryPoints: [web]\n" +
		"      rule: \"PathPrefix(`/shared-extra`)\"\n" +
		"      service: echo\n" +
		"      middlewares: [shared-four]\n"
	t.Cleanup(func() {
		if err := env.writeDynamic("", ""); err != nil {
			t.Errorf("restoring the dynamic configuration: %v", err)
			return
		}
		eventually(t, reloadTimeout, func() bool { return statusOf("/shared-extra/x", nil) == http.StatusNotFound },
			"the restored configuration did not go live")
	})
	require.NoError(t, env.writeDynamic(router, ""))
	eventually(t, reloadTimeout, func() bool { return statusOf("/shared-extra/x", nil) == http.StatusUnauthorized },
		"the reloaded configuration did not go live")
	routes = append(routes, struct {
		path string
		host string
	}{"/shared-extra/x", ""})
	checkAll(t, "after a reload")
}
