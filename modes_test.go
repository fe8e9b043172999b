//go:build !yaegi

package oauthintrospection

// The tests in this file run the scenario tables of introspection_test.go, and the other tables
// that build middlewares from provider options, in every mode of modes: compiled, and interpreted
// by Yaegi when the harness (yaegi_test.go) is built. See the comment there.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mitchellh/mapstructure"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const pluginImport = "github.com/tokengate/oauthintrospection"

// mode is one way of running the plugin. Its builder makes the handlers of one test: all of them in
// one process state (one interpreter), as Traefik builds all routers of a plugin.
type mode struct {
	name    string
	builder func(t *testing.T) builder
}

// modes lists the modes every table runs in. The harness adds the interpreted one.
var modes = []mode{{name: "compiled", builder: func(*testing.T) builder { return compiledBuilder }}}

// compiledBuilder builds the compiled handler through Traefik's decode path.
func compiledBuilder(t *testing.T, next http.Handler, options map[string]any, name string) (http.Handler, func() string, error) {
	logs := &syncBuffer{}
	h, err := buildCompiled(context.Background(), next, options, name, logs)
	return h, logs.String, err
}

// inModes runs test in every mode.
func inModes(t *testing.T, test func(t *testing.T, build builder)) {
	for _, mode := range modes {
		mode := mode
		t.Run(mode.name, func(t *testing.T) { test(t, mode.builder(t)) })
	}
}

func TestScenarios(t *testing.T) {
	inModes(t, func(t *testing.T, build builder) { runScenarios(t, build, coreScenarios()) })
}

func TestConfigErrors(t *testing.T) {
	inModes(t, runConfigErrors)
}

// TestMisplacedSecretsNeverQuoted builds configurations with secrets in the wrong fields, as
// Traefik hands them over: New's error names the field, never the secret (secrets_test.go).
func TestMisplacedSecretsNeverQuoted(t *testing.T) {
	inModes(t, runMisplacedSecrets)
}

// TestLogSecrecyTraefikPath reads what Traefik would log: under the interpreter, its stdout and
// stderr.
func TestLogSecrecyTraefikPath(t *testing.T) {
	inModes(t, runLogSecrecy)
}

// TestManifestTestData proves that the testData of .traefik.yml is a configuration New accepts
// offline, in both modes.
func TestManifestTestData(t *testing.T) {
	raw, err := os.ReadFile(".traefik.yml")
	require.NoError(t, err)
	var manifest struct {
		DisplayName string         `yaml:"displayName"`
		Type        string         `yaml:"type"`
		Import      string         `yaml:"import"`
		Summary     string         `yaml:"summary"`
		TestData    map[string]any `yaml:"testData"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &manifest))
	assert.Equal(t, "middleware", manifest.Type)
	assert.Equal(t, pluginImport, manifest.Import)
	assert.NotEmpty(t, manifest.DisplayName)
	assert.NotEmpty(t, manifest.Summary)
	require.NotEmpty(t, manifest.TestData)

	for _, mode := range modes {
		mode := mode
		t.Run(mode.name, func(t *testing.T) {
			h, _, err := mode.builder(t)(t, &upstream{}, manifest.TestData, "testdata@file")
			require.NoError(t, err)
			require.NotNil(t, h)
		})
	}
}

// TestCRDOptions builds the Hub manifest from JSON, as the Kubernetes CRD provider hands options
// over (numbers as float64, booleans as bool), in both modes, and serves a request with it.
func TestCRDOptions(t *testing.T) {
	for _, mode := range modes {
		mode := mode
		t.Run(mode.name, func(t *testing.T) {
			idp := newFakeIDP(t, answerJSON(`{"active":true,"grp":"admin","exp":4102444800}`))
			options := decodeJSONOptions(t, `{
				"tokenSource": {"header": "Authorization", "headerAuthScheme": "Bearer"},
				"clientConfig": {"url": "`+idp.srv.URL+`", "headers": {"Authorization": "Basic ZXhhbXBsZTpleGFtcGxl"},
					"tokenTypeHint": "access_token", "timeoutSeconds": 2, "maxRetries": 1},
				"forwardAuthorization": true,
				"forwardHeaders": {"Group": "grp", "Expires-At": "exp"},
				"claims": "Equals(`+"`grp`, `admin`"+`)",
				"cache": {"ttlSeconds": 10, "maxEntries": 100}
			}`)
			up := &upstream{}
			h, _, err := mode.builder(t)(t, up, options, "crd@test")
			require.NoError(t, err)
			req := httptest.NewRequest(http.MethodGet, "/api", nil)
			req.Header.Set("Authorization", "Bearer tok")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			seen, _ := up.seen()
			assert.Equal(t, "admin", seen.Header.Get("Group"))
			assert.Equal(t, "4102444800", seen.Header.Get("Expires-At"))
			assert.Equal(t, "Bearer tok", seen.Header.Get("Authorization"), "forwardAuthorization: true (a JSON bool)")
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of handlers under test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// decodeOptions decodes provider options into a config with Traefik's mapstructure settings.
func decodeOptions(options map[string]any, result any) error {
	decoder, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.StringToSliceHookFunc(","),
		WeaklyTypedInput: true,
		Result:           result,
	})
	if err != nil {
		return fmt.Errorf("failed to create configuration decoder: %w", err)
	}
	if err := decoder.Decode(options); err != nil {
		return fmt.Errorf("failed to decode configuration: %w", err)
	}
	return nil
}

// buildCompiled makes a compiled handler through the same decode path, with its log captured.
func buildCompiled(ctx context.Context, next http.Handler, options map[string]any, name string, logs *syncBuffer) (http.Handler, error) {
	cfg := CreateConfig()
	if len(options) > 0 {
		if err := decodeOptions(options, cfg); err != nil {
			return nil, err
		}
	}
	h, err := New(ctx, next, cfg, name)
	if err != nil {
		return nil, err
	}
	if m, ok := h.(*middleware); ok && logs != nil {
		m.logf = func(level, msg string) { fmt.Fprintf(logs, "%s: %s\n", level, msg) }
	}
	return h, nil
}

// TestGuardOptionsTraefikPath sets the guard's options as the file provider hands them over
// (strings) and as the Kubernetes CRD does (JSON numbers and booleans), and checks what they do:
// two failed introspections open the breaker, whose 503 carries Retry-After; disabled, it never opens.
func TestGuardOptionsTraefikPath(t *testing.T) {
	inModes(t, func(t *testing.T, build builder) {
		for _, test := range []struct {
			desc    string
			breaker map[string]any
			opens   bool
		}{
			{"file provider", map[string]any{"consecutiveFailures": "2", "openSeconds": "30"}, true},
			{"CRD", map[string]any{"consecutiveFailures": float64(2), "openSeconds": float64(30)}, true},
			{"file provider, disabled", map[string]any{"consecutiveFailures": "2", "disabled": "true"}, false},
			{"CRD, disabled", map[string]any{"consecutiveFailures": float64(2), "disabled": true}, false},
		} {
			t.Run(test.desc, func(t *testing.T) {
				idp := newFakeIDP(t, answerStatus(http.StatusBadGateway))
				options := with(with(with(hubOptions(idp.srv.URL), "clientConfig.maxRetries", "0"),
					"clientConfig.maxInFlight", "8"), "clientConfig.circuitBreaker", test.breaker)
				h, _, err := build(t, &upstream{}, options, "guardopts-"+test.desc+"@test")
				require.NoError(t, err)
				for i := 0; i < 4; i++ {
					rec := send(h, bearerRequest(fmt.Sprintf("t-%d", i)))
					assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
					want := ""
					if test.opens && i >= 2 {
						want = "30"
					}
					assert.Equal(t, want, rec.Header().Get("Retry-After"), "request %d", i)
				}
				calls, _, _ := idp.snapshot()
				wantCalls := 4
				if test.opens {
					wantCalls = 2
				}
				assert.Equal(t, wantCalls, calls, "IdP calls")
			})
		}
	})
}

// TestSharedTierOptionsTraefikPath: cache.redis and revocation as the file provider (strings, and
// a comma-separated endpoints string) and the CRD (JSON types, a list) hand them over: two
// middlewares of one configuration share the answer through Redis, and revocation answers.
func TestSharedTierOptionsTraefikPath(t *testing.T) {
	inModes(t, func(t *testing.T, build builder) {
		srv := startRedis(t)
		for _, test := range []struct {
			desc  string
			redis map[string]any
		}{
			{"file provider", map[string]any{"endpoints": "127.0.0.1:1, " + srv.addr, "database": "2", "timeoutMilliseconds": "200", "keyPrefix": "file:"}},
			{"CRD", map[string]any{"endpoints": []any{srv.addr}, "database": float64(2), "timeoutMilliseconds": float64(200), "keyPrefix": "crd:"}},
		} {
			t.Run(test.desc, func(t *testing.T) {
				token := "tok-" + strings.ReplaceAll(test.desc, " ", "-")
				idp := newRevocableIDP(t)
				options := with(with(with(hubOptions(idp.srv.URL+"/introspect"), "cache.redis", test.redis),
					"revocation", map[string]any{"path": "/revoke", "url": idp.srv.URL + "/revoke"}),
					"cache.negativeTtlSeconds", "30")
				a, _, err := build(t, &upstream{}, options, "tiera-"+test.desc+"@test")
				require.NoError(t, err)
				b, _, err := build(t, &upstream{}, options, "tierb-"+test.desc+"@test")
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, send(a, bearerRequest(token)).Code)
				assert.Equal(t, http.StatusOK, send(b, bearerRequest(token)).Code)
				assert.Equal(t, int32(1), idp.introspected.Load(), "one introspection for two middlewares")
				db2 := testRedisClient(srv.addr, "")
				db2.database = 2
				keys := expectRedis(t, db2, "", "KEYS", test.redis["keyPrefix"].(string)+"*")
				assert.Len(t, keys.arr, 1, "the answer, under keyPrefix, in database 2")
				assert.Equal(t, http.StatusOK, revokeThrough(a, token, rsBasic).Code)
				assert.Equal(t, http.StatusUnauthorized, send(b, bearerRequest(token)).Code)
			})
		}
	})
}
