//go:build !yaegi && !nointerp

package oauthintrospection

import (
	"testing"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// interpCostSource is a program whose functions each repeat one kind of operation n times, so that
// BenchmarkInterpreterCosts can time what Yaegi v0.16.1 charges for it. docs/development.md keeps
// the table of its figures; comments in the plugin cite that table instead of their own numbers.
const interpCostSource = `package costs

import (
	"crypto/sha256"
	"strings"
)

type thing struct{ n int }

func (t *thing) method(x int) int { return x + t.n }

type adder interface{ method(x int) int }

func plain(x int) int { return x + 1 }

func withLocals(x int) int {
	a, b, c, d, e := x, x+1, x+2, x+3, x+4
	f, g, h, i, j := a+b, b+c, c+d, d+e, e+a
	return f + g + h + i + j
}

func Empty(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += i
	}
	return s
}

func Plain(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += plain(i)
	}
	return s
}

func Locals(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		s += withLocals(i)
	}
	return s
}

func Method(n int) int {
	t := &thing{n: 1}
	s := 0
	for i := 0; i < n; i++ {
		s += t.method(i)
	}
	return s
}

func Interface(n int) int {
	var a adder = &thing{n: 1}
	s := 0
	for i := 0; i < n; i++ {
		s += a.method(i)
	}
	return s
}

func Stdlib(n int) int {
	s := 0
	for i := 0; i < n; i++ {
		if strings.EqualFold("Bearer ", "bearer ") {
			s++
		}
	}
	return s
}

// ByteLoop counts over n bytes, one interpreted iteration each.
func ByteLoop(n int) int {
	b := []byte(strings.Repeat("a", n))
	s := 0
	for i := 0; i < len(b); i++ {
		if b[i] == 'a' {
			s++
		}
	}
	return s
}

func ArrayKey(n int) int {
	m := map[[sha256.Size]byte]int{}
	var k [sha256.Size]byte
	m[k] = 1
	s := 0
	for i := 0; i < n; i++ {
		s += m[k]
	}
	return s
}

func StringKey(n int) int {
	m := map[string]int{}
	var k [sha256.Size]byte
	m[string(k[:])] = 1
	s := 0
	for i := 0; i < n; i++ {
		s += m[string(k[:])]
	}
	return s
}
`

// BenchmarkInterpreterCosts prints, per operation, what one costs interpreted: ns/op and
// allocs/op, where an op is one iteration of the function's loop (an "Empty" iteration is the
// loop alone, to subtract). Run with: go test -run '^$' -bench InterpreterCosts -benchmem.
func BenchmarkInterpreterCosts(b *testing.B) {
	i := interp.New(interp.Options{})
	if err := i.Use(stdlib.Symbols); err != nil {
		b.Fatal(err)
	}
	if _, err := i.Eval(interpCostSource); err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"Empty", "Plain", "Locals", "Method", "Interface", "Stdlib", "ByteLoop", "ArrayKey", "StringKey"} {
		v, err := i.Eval("costs." + name)
		if err != nil {
			b.Fatal(err)
		}
		f, ok := v.Interface().(func(int) int)
		if !ok {
			b.Fatalf("costs.%s is a %T", name, v.Interface())
		}
		f(10) // build the function's types before timing
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			f(b.N)
		})
	}
}
