//go:build !yaegi

package oauthintrospection

// This file is the Yaegi harness: it loads this package from source with Yaegi v0.16.1, the
// interpreter Traefik v3.7 embeds, and builds middlewares exactly as Traefik's
// pkg/plugins/middlewareyaegi.go does: CreateConfig, a mapstructure decode with Traefik's settings,
// then New through reflect. It also runs the stdlib-only unit tests of this package inside the
// interpreter. It is compiled only (the interpreter cannot load yaegi itself), hence the build tag.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/mitchellh/mapstructure"
	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

const pluginImport = "github.com/tokengate/oauthintrospection"

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

// layoutGoPath copies this package's source into dir/src/<import path>, the layout Traefik gives
// local plugins (plugins-local/src/<moduleName>). Test files are copied only when withTests is set.
func layoutGoPath(dir string, withTests bool) (string, error) {
	pkgDir := filepath.Join(dir, "src", filepath.FromSlash(pluginImport))
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		return "", err
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		return "", err
	}
	for _, f := range append(files, "go.mod", ".traefik.yml") {
		if strings.HasSuffix(f, "_test.go") && !withTests {
			continue
		}
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		// Yaegi v0.16.1 reads only "// +build" lines, so the harness itself leaves out the
		// compiled-only test files.
		if bytes.HasPrefix(b, []byte("//go:build !yaegi")) {
			continue
		}
		if err := os.WriteFile(filepath.Join(pkgDir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	return pkgDir, nil
}

// yaegiPlugin is this package loaded in its own interpreter, as Traefik loads a plugin.
type yaegiPlugin struct {
	fnNew          reflect.Value
	fnCreateConfig reflect.Value
	stdout         *syncBuffer // Traefik logs a plugin's stdout at DEBUG
	stderr         *syncBuffer // and its stderr (the log package) at ERROR
}

// loadYaegiPlugin interprets the package in a fresh interpreter, so that package-level state is
// not shared with other tests.
func loadYaegiPlugin(t testing.TB) *yaegiPlugin {
	t.Helper()
	gopath := t.TempDir()
	if _, err := layoutGoPath(gopath, false); err != nil {
		t.Fatalf("laying out GOPATH: %v", err)
	}
	p := &yaegiPlugin{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	i := interp.New(interp.Options{GoPath: gopath, Env: os.Environ(), Stdout: p.stdout, Stderr: p.stderr})
	if err := i.Use(stdlib.Symbols); err != nil {
		t.Fatalf("loading stdlib symbols: %v", err)
	}
	if _, err := i.Eval(fmt.Sprintf("import %q", pluginImport)); err != nil {
		t.Fatalf("interpreting the plugin: %v", err)
	}
	var err error
	if p.fnNew, err = i.Eval("oauthintrospection.New"); err != nil {
		t.Fatalf("eval New: %v", err)
	}
	if p.fnCreateConfig, err = i.Eval("oauthintrospection.CreateConfig"); err != nil {
		t.Fatalf("eval CreateConfig: %v", err)
	}
	return p
}

// build makes a handler the way Traefik does, from the options map a provider hands over.
func (p *yaegiPlugin) build(ctx context.Context, next http.Handler, options map[string]any, name string) (http.Handler, error) {
	vConfig := p.fnCreateConfig.Call(nil)[0]
	if len(options) > 0 {
		if err := decodeOptions(options, vConfig.Interface()); err != nil {
			return nil, err
		}
	}
	results := p.fnNew.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(next), vConfig, reflect.ValueOf(name)})
	if len(results) > 1 && results[1].Interface() != nil {
		err, ok := results[1].Interface().(error)
		if !ok {
			return nil, fmt.Errorf("invalid error type: %T", results[1].Interface())
		}
		return nil, err
	}
	h, ok := results[0].Interface().(http.Handler)
	if !ok {
		return nil, fmt.Errorf("invalid handler type: %T", results[0].Interface())
	}
	return h, nil
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

// interpretWithTests interprets the package together with its stdlib-only test files. Files that
// need compiled-only packages start with the build constraint !yaegi and are left out.
func interpretWithTests(tb testing.TB) *interp.Interpreter {
	tb.Helper()
	gopath := tb.TempDir()
	if _, err := layoutGoPath(gopath, true); err != nil {
		tb.Fatalf("laying out GOPATH: %v", err)
	}
	i := interp.New(interp.Options{GoPath: gopath, BuildTags: []string{"yaegi"}, Env: os.Environ()})
	if err := i.Use(stdlib.Symbols); err != nil {
		tb.Fatalf("loading stdlib symbols: %v", err)
	}
	if err := i.EvalTest(pluginImport); err != nil {
		tb.Fatalf("interpreting the package with its tests: %v", err)
	}
	return i
}

// interpretedFuncs returns the interpreted functions of type F whose names start with prefix,
// sorted by name.
func interpretedFuncs[F any](i *interp.Interpreter, prefix string) ([]string, map[string]F) {
	var names []string
	funcs := map[string]F{}
	for _, syms := range i.Symbols(pluginImport) {
		for name, sym := range syms {
			if fn, ok := sym.Interface().(F); ok && strings.HasPrefix(name, prefix) {
				names = append(names, name)
				funcs[name] = fn
			}
		}
	}
	sort.Strings(names)
	return names, funcs
}

// TestInterpretedUnitTests runs every Test function of the stdlib-only test files inside Yaegi.
func TestInterpretedUnitTests(t *testing.T) {
	names, tests := interpretedFuncs[func(*testing.T)](interpretWithTests(t), "Test")
	if len(names) == 0 {
		t.Fatal("no interpreted test found")
	}
	for _, name := range names {
		t.Run(name, tests[name])
	}
}

// BenchmarkInterpreted runs the Benchmark functions of the stdlib-only test files inside Yaegi, so
// the cost of the hot path can be compared with the compiled one.
func BenchmarkInterpreted(b *testing.B) {
	names, benchmarks := interpretedFuncs[func(*testing.B)](interpretWithTests(b), "Benchmark")
	for _, name := range names {
		b.Run(strings.TrimPrefix(name, "Benchmark"), benchmarks[name])
	}
}
