//go:build !yaegi

package oauthintrospection

import (
	"fmt"
	"strings"
	"testing"
)

// This file runs compiled only: Yaegi cannot run fuzz targets, and it allocates on every call, so the
// allocation test would not hold there.

func FuzzParseClaims(f *testing.F) {
	for _, test := range claimsStringTests {
		f.Add(test.in)
		f.Add(test.expected)
	}
	for _, test := range claimsErrorTests {
		f.Add(test.in)
	}
	for _, test := range claimsEvalTests {
		f.Add(test.in)
	}
	// Bytes that print escaped make the canonical form longer than the input.
	f.Add("Equals(`a`, `" + strings.Repeat("\x01", maxClaimsLen-20) + "`)")
	hub := decodeClaims(f, hubClaimsJSON)
	extra := decodeClaims(f, extraClaimsJSON)

	f.Fuzz(func(t *testing.T, in string) {
		x, err := parseClaims(in)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "offset ") {
				t.Fatalf("parseClaims(%q) error %q does not start with an offset", in, msg)
			}
			return
		}
		// eval must not panic and must agree with a plain walk of the tree.
		docs := []map[string]any{hub, extra, nil}
		root := x.root
		for _, claims := range docs {
			if got, tree := evalClaims(x, claims), evalClaimsTree(root, claims); got != tree {
				t.Fatalf("parseClaims(%q).eval = %t, but %t by the tree", in, got, tree)
			}
		}

		canonical := x.String()
		y, err := parseClaims(canonical)
		if len(canonical) > maxClaimsLen {
			// Arguments holding control bytes or invalid UTF-8 print as \xNN escapes, so the canonical
			// form of an accepted expression can exceed the length limit; only that limit may reject it.
			want := fmt.Sprintf("offset %d: expression too long (max %d bytes)", maxClaimsLen, maxClaimsLen)
			if err == nil || err.Error() != want {
				t.Fatalf("canonical form of %d bytes: error %v, want %q", len(canonical), err, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseClaims(%q) = %s, which does not reparse: %v", in, canonical, err)
		}
		if again := y.String(); again != canonical {
			t.Fatalf("parseClaims(%q) = %s, which reparses as %s", in, canonical, again)
		}
		for _, claims := range docs {
			if got, again := evalClaims(x, claims), evalClaims(y, claims); got != again {
				t.Fatalf("parseClaims(%q).eval = %t, but its canonical form %s = %t", in, got, canonical, again)
			}
		}
	})
}

func TestClaimsEvalAllocs(t *testing.T) {
	claims := decodeClaims(t, extraClaimsJSON)
	testCases := []struct {
		desc string
		in   string
	}{
		{desc: "strings", in: "Equals(`grp`, `admin`) && Prefix(`referrer`, `http://`) && Contains(`referrer`, `/foo/`)"},
		{desc: "arrays", in: "Contains(`areas`, `home`) && OneOf(`areas`, `lab`, `home`) && !Equals(`areas`, `x`)"},
		{desc: "split", in: "SplitContains(`scope`, ` `, `deploy`) && SplitContains(`aud`, `,`, `web`)"},
		{desc: "nested and missing", in: "Equals(`user.name`, `John Snow`) && !Equals(`user.email`, `x`) && !Equals(`nil`, `x`)"},
		{desc: "integers and booleans", in: "Equals(`exp`, `1767225600`) && Equals(`active`, `true`)"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			x, err := parseClaims(test.in)
			if err != nil {
				t.Fatal(err)
			}
			if !evalClaims(x, claims) {
				t.Fatalf("%s = false, want true", test.in)
			}
			if n := testing.AllocsPerRun(100, func() { evalClaims(x, claims) }); n != 0 {
				t.Errorf("%s allocates %v times per eval, want 0", test.in, n)
			}
		})
	}
}

func BenchmarkClaimsEval(b *testing.B) {
	claims := decodeClaims(b, extraClaimsJSON)
	x, err := parseClaims("Equals(`grp`, `admin`) && (OneOf(`areas`, `lab`, `home`) || SplitContains(`scope`, ` `, `deploy`)) && !Equals(`user.status`, `dead`)")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		evalClaims(x, claims)
	}
}
