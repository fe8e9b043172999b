//go:build !yaegi

package oauthintrospection

// The tests in this file run the scenario tables of introspection_test.go twice: against the
// compiled handler, and against the handler Yaegi interprets, built the way Traefik builds it.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// compiledBuilder builds the compiled handler through Traefik's decode path.
func compiledBuilder(t *testing.T, next http.Handler, options map[string]any, name string) (http.Handler, func() string, error) {
	logs := &syncBuffer{}
	h, err := buildCompiled(context.Background(), next, options, name, logs)
	return h, logs.String, err
}

// interpretedBuilder builds each handler in a fresh interpreter, so no package state is shared.
func interpretedBuilder(t *testing.T, next http.Handler, options map[string]any, name string) (http.Handler, func() string, error) {
	return loadYaegiPlugin(t).builder()(t, next, options, name)
}

// builder builds handlers in this one interpreter, as Traefik does for all routers of a plugin.
func (p *yaegiPlugin) builder() builder {
	return func(t *testing.T, next http.Handler, options map[string]any, name string) (http.Handler, func() string, error) {
		h, err := p.build(context.Background(), next, options, name)
		return h, func() string { return p.stdout.String() + p.stderr.String() }, err
	}
}

func TestScenariosCompiled(t *testing.T) {
	runScenarios(t, compiledBuilder, coreScenarios())
}

func TestScenariosInterpreted(t *testing.T) {
	runScenarios(t, loadYaegiPlugin(t).builder(), coreScenarios())
}

func TestConfigErrorsCompiled(t *testing.T) {
	runConfigErrors(t, compiledBuilder)
}

func TestConfigErrorsInterpreted(t *testing.T) {
	runConfigErrors(t, loadYaegiPlugin(t).builder())
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

	for _, mode := range []struct {
		name  string
		build builder
	}{{"compiled", compiledBuilder}, {"interpreted", interpretedBuilder}} {
		t.Run(mode.name, func(t *testing.T) {
			h, _, err := mode.build(t, &upstream{}, manifest.TestData, "testdata@file")
			require.NoError(t, err)
			require.NotNil(t, h)
		})
	}
}

// TestCRDOptions builds the Hub manifest from JSON, as the Kubernetes CRD provider hands options
// over (numbers as float64, booleans as bool), in both modes, and serves a request with it.
func TestCRDOptions(t *testing.T) {
	for _, mode := range []struct {
		name  string
		build builder
	}{{"compiled", compiledBuilder}, {"interpreted", interpretedBuilder}} {
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
			h, _, err := mode.build(t, up, options, "crd@test")
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
