package main

import (
	"strings"
	"testing"
)

// TestReadEquivalent reads the table of docs/mutation.md, escaped pipes included.
func TestReadEquivalent(t *testing.T) {
	eq, err := readEquivalent("../../docs/mutation.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []mutant{
		{file: "cache.go", Type: "CONDITIONALS_BOUNDARY", Column: 14, text: "if c.stale > 0 {"},
		{file: "fastpath.go", Type: "INVERT_LOGICAL", Column: 66, text: `return (f.withQuery && req.URL.RawQuery != "") || (f.withCookie && len(req.Header["Cookie"]) != 0)`},
	} {
		if _, ok := eq[m.key()]; !ok {
			t.Errorf("row for %s not read", m.key())
		}
	}
	if len(eq) < 20 {
		t.Errorf("%d rows read", len(eq))
	}
	for k := range eq {
		if f := strings.SplitN(k, "|", 3); !isMutator(f[1]) {
			t.Errorf("a row of another table read as equivalent: %s", k)
		}
	}
}

// TestStaleRows: a row no living mutant matched is stale only when its file was mutated.
func TestStaleRows(t *testing.T) {
	row := func(file string) string {
		return mutant{file: file, Type: "CONDITIONALS_BOUNDARY", Column: 3, text: "if a < b {"}.key()
	}
	equivalent := map[string]string{row("a.go"): "", row("b.go"): "", row("c.go"): ""}
	got := staleRows(equivalent, map[string]bool{row("a.go"): true}, map[string]bool{"a.go": true, "b.go": true})
	if len(got) != 1 || got[0] != row("b.go") {
		t.Errorf("stale rows = %q, want only b.go's", got)
	}
}

func TestMutateAt(t *testing.T) {
	got, ok := mutateAt("\tif a <= b && c {", 6, swaps["CONDITIONALS_BOUNDARY"])
	if !ok || got != "\tif a < b && c {" {
		t.Errorf("got %q, %v", got, ok)
	}
	if _, ok := mutateAt("x", 5, swaps["INVERT_LOGICAL"]); ok {
		t.Errorf("mutated past the end")
	}
}
