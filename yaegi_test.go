//go:build !yaegi && !nointerp

package oauthintrospection

// This file is the Yaegi harness. Every behaviour is tested twice, because Traefik runs the plugin
// interpreted by Yaegi v0.16.1 and the interpreter differs from the compiler:
//
//   - Compiled: go test -race builds the package and its test files natively.
//   - Interpreted, as Traefik builds it: loadYaegiPlugin interprets the plugin alone and builds
//     handlers exactly as Traefik's pkg/plugins/middlewareyaegi.go does (CreateConfig, a
//     mapstructure decode with Traefik's settings, New through reflect). The init below adds this
//     mode to modes (modes_test.go), so every table built from provider options runs in both.
//   - Interpreted, unit tests: TestInterpretedUnitTests interprets the package together with its
//     standard-library-only test files (EvalTest) and runs every Test function inside Yaegi.
//
// Build tags: a test file that needs a compiled-only package (yaegi, mapstructure, testify) starts
// with "//go:build !yaegi", and the interpreter runs with the tag yaegi, so it leaves such files
// out. Yaegi reads only "// +build" lines, which is why mode_interpreted_test.go, which sets
// interpreted = true inside the interpreter, carries both forms. This file also needs !nointerp:
// go test -tags nointerp (make mutation) builds the compiled mode alone, in a fraction of the time.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	"github.com/traefik/yaegi/stdlib/unrestricted"
)

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
	// os/exec, for the tests that start a redis-server. Only the tests get it: the plugin is
	// loaded with stdlib.Symbols alone, as Traefik loads it.
	if err := i.Use(unrestricted.Symbols); err != nil {
		tb.Fatalf("loading os/exec symbols: %v", err)
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

func init() {
	modes = append(modes, mode{name: "interpreted", builder: func(t *testing.T) builder { return loadYaegiPlugin(t).builder() }})
}

// builder builds handlers in this one interpreter, as Traefik does for all routers of a plugin.
func (p *yaegiPlugin) builder() builder {
	return func(t *testing.T, next http.Handler, options map[string]any, name string) (http.Handler, func() string, error) {
		h, err := p.build(context.Background(), next, options, name)
		return h, func() string { return p.stdout.String() + p.stderr.String() }, err
	}
}

// TestRepeatedNewTraefikPath builds the interpreted plugin again and again with one configuration,
// then alternating two, through Traefik's path (CreateConfig, mapstructure decode of
// file-provider strings, New through reflect), and checks that goroutines and the heap do not grow.
// A kept generation costs about 0.4 MiB (see TestRepeatedNewDoesNotLeak), so 5 MiB fails from
// about a dozen kept generations on.
func TestRepeatedNewTraefikPath(t *testing.T) {
	const rounds = 150 // about 7 ms a build under -race; 150 kept generations would be 60 MiB
	p := loadYaegiPlugin(t)
	options := func(generation int) map[string]any {
		o := hubOptions("http://127.0.0.1:1/introspect")
		if generation%2 == 1 {
			o = with(o, "claims", nil)
			o = with(o, "usernameClaim", "sub")
			o = with(o, "cache", map[string]any{"ttlSeconds": "60", "negativeTtlSeconds": "30"})
		}
		return o
	}
	build := func(generation int) {
		if _, err := p.build(context.Background(), &upstream{}, options(generation), "reload@file"); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
	for i := 0; i < 4; i++ {
		build(i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	baseline := runtime.NumGoroutine()
	for i := 0; i < rounds; i++ {
		build(0)
	}
	for i := 0; i < rounds; i++ {
		build(i)
	}
	expectGoroutinesBackTo(t, baseline)
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap: %d KiB before, %d KiB after 2×%d builds (growth %d KiB)", before.HeapAlloc>>10, after.HeapAlloc>>10, rounds, growth>>10)
	if growth > 5<<20 {
		t.Errorf("the heap grew by %d KiB over %d builds", growth>>10, 2*rounds)
	}
}
