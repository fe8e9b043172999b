package oauthintrospection

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// This file runs compiled and interpreted by Yaegi: standard library only, no t.Parallel.

// hubClaimsJSON is the claims document of the Traefik Hub reference, on which all its examples hold.
const hubClaimsJSON = `{"active":true,"grp":"admin","scope":"reader writer deploy",` +
	`"referrer":"http://example.com/foo/bar","areas":["office","home"],` +
	`"user":{"name":"John Snow","status":"undead"}}`

// extraClaimsJSON extends hubClaimsJSON with numbers, nulls, escaped keys and odd arrays.
const extraClaimsJSON = `{"active":true,"grp":"admin","scope":"reader writer deploy",` +
	`"referrer":"http://example.com/foo/bar","areas":["office","home"],` +
	`"user":{"name":"John Snow","status":"undead"},` +
	`"exp":1767225600,"ratio":0.5,"big":1.7672256e+09,"exp_float":1767225600.0,"neg_zero":-0.0,` +
	`"huge":12345678901234567890,"a.b":"x","a":{"b":"nested"},"back\\slash":"y","dot.":{"":"empty"},` +
	`"nil":null,"obj":{"k":"v"},"mixed":[1,2.50,true,null,["home"],{"x":"home"}],"none":[],` +
	`"aud":["api","web"],"spaced":"a  b","csv":"x,,y"}`

// decodeClaims decodes a claims document the way the middleware does, with numbers as json.Number.
func decodeClaims(tb testing.TB, s string) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		tb.Fatalf("decoding claims: %v", err)
	}
	return claims
}

// claimsTokenNames names the token kinds in the lex table.
var claimsTokenNames = []string{"EOF", "ident", "string", "(", ")", ",", "!", "&&", "||"}

// formatClaimsToken prints a token as "offset kind [text] [value]".
func formatClaimsToken(tok claimsToken) string {
	switch tok.kind {
	case tokIdent:
		return fmt.Sprintf("%d ident %s", tok.off, tok.text)
	case tokString:
		return fmt.Sprintf("%d string %s=%q", tok.off, tok.text, tok.val)
	}
	if tok.text != claimsTokenNames[tok.kind] && tok.kind != tokEOF {
		return fmt.Sprintf("%d bad token %q of kind %d", tok.off, tok.text, tok.kind)
	}
	return fmt.Sprintf("%d %s", tok.off, claimsTokenNames[tok.kind])
}

func TestLexClaims(t *testing.T) {
	testCases := []struct {
		desc     string
		in       string
		expected []string
		err      string
	}{
		{
			desc:     "empty",
			in:       "",
			expected: []string{"0 EOF"},
		},
		{
			desc:     "call",
			in:       "Equals(`grp`, `admin`)",
			expected: []string{"0 ident Equals", "6 (", "7 string `grp`=\"grp\"", "12 ,", "14 string `admin`=\"admin\"", "21 )", "22 EOF"},
		},
		{
			desc:     "operators without spaces",
			in:       "!a&&b||(c)",
			expected: []string{"0 !", "1 ident a", "2 &&", "4 ident b", "5 ||", "7 (", "8 ident c", "9 )", "10 EOF"},
		},
		{
			desc:     "white space",
			in:       " \t\r\n( )\n",
			expected: []string{"4 (", "6 )", "8 EOF"},
		},
		{
			desc: "identifiers",
			// Every end of the letter and digit ranges, so that each bound of isIdentByte is held.
			in:       "_x9 Split_2 azAZ09",
			expected: []string{"0 ident _x9", "4 ident Split_2", "12 ident azAZ09", "18 EOF"},
		},
		{
			desc:     "double-quoted strings",
			in:       `"a\tb" "\x41"`,
			expected: []string{`0 string "a\tb"="a\tb"`, `7 string "\x41"="A"`, "13 EOF"},
		},
		{
			desc:     "raw string keeps newlines and backslashes",
			in:       "`a\n\\.b`",
			expected: []string{"0 string `a\n\\.b`=\"a\\n\\\\.b\"", "7 EOF"},
		},
		{
			desc:     "double-quoted string keeps invalid UTF-8",
			in:       "\"\xff\\xfe\"",
			expected: []string{"0 string \"\xff\\xfe\"=\"\\xff\\xfe\"", "7 EOF"},
		},
		{
			// Each rune is encoded as UTF-8, whether escaped or raw: U+0080 is the first that takes
			// two bytes, an escaped U+FFFD is a rune and not a byte to copy, and é stands for any raw
			// character of more than one byte.
			desc:     "double-quoted string encodes runes",
			in:       `"\u0080\uFFFD\u00e9é"`,
			expected: []string{"0 string \"\\u0080\\uFFFD\\u00e9é\"=\"\\u0080\ufffdéé\"", "22 EOF"},
		},
		{
			desc:     "empty strings",
			in:       "``\"\"",
			expected: []string{"0 string ``=\"\"", "2 string \"\"=\"\"", "4 EOF"},
		},
		{
			desc: "single ampersand",
			in:   "a & b",
			err:  `offset 2: unexpected "&"`,
		},
		{
			desc: "single bar",
			in:   "a |",
			err:  `offset 2: unexpected "|"`,
		},
		{
			desc: "digit cannot start a name",
			in:   "9a",
			err:  `offset 0: unexpected "9"`,
		},
		{
			desc: "zero cannot start a name",
			in:   "0a",
			err:  `offset 0: unexpected "0"`,
		},
		{
			desc: "non-ASCII character",
			in:   "a é",
			err:  `offset 2: unexpected "é"`,
		},
		{
			desc: "invalid UTF-8",
			in:   "a \xff",
			err:  `offset 2: unexpected "\xff"`,
		},
		{
			desc: "single quotes",
			in:   "'a'",
			err:  "offset 0: single-quoted strings are not supported; use backquotes",
		},
		{
			desc: "unterminated raw string",
			in:   "a `b",
			err:  "offset 2: unterminated string",
		},
		{
			desc: "unterminated double-quoted string",
			in:   `a "b\"`,
			err:  "offset 2: unterminated string",
		},
		{
			desc: "newline in double-quoted string",
			in:   "\"a\nb\"",
			err:  "offset 0: unterminated string",
		},
		{
			desc: "bad escape",
			in:   `"ab\q"`,
			err:  "offset 3: invalid escape sequence in string",
		},
		{
			desc: "escaped single quote in double-quoted string",
			in:   `"\'"`,
			err:  "offset 1: invalid escape sequence in string",
		},
	}

	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			toks, err := lexClaims(test.in)
			if test.err != "" {
				if err == nil || err.Error() != test.err {
					t.Fatalf("lexClaims(%q) error = %v, want %q", test.in, err, test.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("lexClaims(%q): %v", test.in, err)
			}
			got := make([]string, len(toks))
			for i, tok := range toks {
				got[i] = formatClaimsToken(tok)
			}
			if !reflect.DeepEqual(got, test.expected) {
				t.Errorf("lexClaims(%q) =\n%q\nwant\n%q", test.in, got, test.expected)
			}
		})
	}
}

// claimsStringTests maps expressions to their canonical form. It also seeds FuzzParseClaims.
var claimsStringTests = []struct {
	desc     string
	in       string
	expected string
}{
	{
		desc:     "hub example",
		in:       "Equals(`grp`, `admin`)",
		expected: "Equals(`grp`, `admin`)",
	},
	{
		desc:     "white space is free",
		in:       " \tEquals(\n`grp` ,`admin`\r\n)  ",
		expected: "Equals(`grp`, `admin`)",
	},
	{
		desc:     "every function",
		in:       "Equals(`a`,`1`)&&Prefix(`b`,`2`)&&Contains(`c`,`3`)&&SplitContains(`d`,` `,`4`)&&OneOf(`e`,`5`,`6`,`7`)",
		expected: "Equals(`a`, `1`) && Prefix(`b`, `2`) && Contains(`c`, `3`) && SplitContains(`d`, ` `, `4`) && OneOf(`e`, `5`, `6`, `7`)",
	},
	{
		desc:     "&& binds tighter than ||",
		in:       "Equals(`a`, `1`) || Equals(`b`, `2`) && Equals(`c`, `3`)",
		expected: "Equals(`a`, `1`) || (Equals(`b`, `2`) && Equals(`c`, `3`))",
	},
	{
		desc:     "&& binds tighter than || on the left",
		in:       "Equals(`a`, `1`) && Equals(`b`, `2`) || Equals(`c`, `3`)",
		expected: "(Equals(`a`, `1`) && Equals(`b`, `2`)) || Equals(`c`, `3`)",
	},
	{
		desc:     "two && chains",
		in:       "Equals(`a`, `1`) && Equals(`b`, `2`) || Equals(`c`, `3`) && Equals(`d`, `4`)",
		expected: "(Equals(`a`, `1`) && Equals(`b`, `2`)) || (Equals(`c`, `3`) && Equals(`d`, `4`))",
	},
	{
		desc:     "parentheses override precedence",
		in:       "(Equals(`a`, `1`) || Equals(`b`, `2`)) && Equals(`c`, `3`)",
		expected: "(Equals(`a`, `1`) || Equals(`b`, `2`)) && Equals(`c`, `3`)",
	},
	{
		desc:     "|| inside && chain",
		in:       "Equals(`a`, `1`) && (Equals(`b`, `2`) || Equals(`c`, `3`)) && Equals(`d`, `4`)",
		expected: "Equals(`a`, `1`) && (Equals(`b`, `2`) || Equals(`c`, `3`)) && Equals(`d`, `4`)",
	},
	{
		desc:     "same-operator chains are flattened",
		in:       "Equals(`a`, `1`) || (Equals(`b`, `2`) || (Equals(`c`, `3`)))",
		expected: "Equals(`a`, `1`) || Equals(`b`, `2`) || Equals(`c`, `3`)",
	},
	{
		desc:     "flattened && chain",
		in:       "((Equals(`a`, `1`) && Equals(`b`, `2`)) && Equals(`c`, `3`))",
		expected: "Equals(`a`, `1`) && Equals(`b`, `2`) && Equals(`c`, `3`)",
	},
	{
		desc:     "redundant parentheses",
		in:       "(((Equals(`a`, `1`))))",
		expected: "Equals(`a`, `1`)",
	},
	{
		desc:     "not binds tighter than &&",
		in:       "!Equals(`a`, `1`) && Equals(`b`, `2`)",
		expected: "!Equals(`a`, `1`) && Equals(`b`, `2`)",
	},
	{
		desc:     "not of a chain",
		in:       "! (Equals(`a`, `1`) && Equals(`b`, `2`))",
		expected: "!(Equals(`a`, `1`) && Equals(`b`, `2`))",
	},
	{
		desc:     "double not",
		in:       "!(!Equals(`a`, `1`))",
		expected: "!!Equals(`a`, `1`)",
	},
	{
		desc:     "not of a parenthesized call",
		in:       "!(Equals(`a`, `1`))",
		expected: "!Equals(`a`, `1`)",
	},
	{
		desc:     "nested parentheses",
		in:       "((Equals(`a`, `1`) || !(Equals(`b`, `2`) && (Equals(`c`, `3`) || Equals(`d`, `4`)))) && Equals(`e`, `5`))",
		expected: "(Equals(`a`, `1`) || !(Equals(`b`, `2`) && (Equals(`c`, `3`) || Equals(`d`, `4`)))) && Equals(`e`, `5`)",
	},
	{
		desc:     "double-quoted strings print backquoted",
		in:       `Equals("grp", "ad\"min")`,
		expected: "Equals(`grp`, `ad\"min`)",
	},
	{
		desc:     "backquote in a value prints double-quoted",
		in:       "Equals(`a`, \"x`y\")",
		expected: "Equals(`a`, \"x`y\")",
	},
	{
		desc:     "control character in a value prints double-quoted",
		in:       "Equals(`a`, `x\ny`)",
		expected: "Equals(`a`, \"x\\ny\")",
	},
	{
		desc:     "invalid UTF-8 in a value prints double-quoted",
		in:       `Equals("a", "\xff")`,
		expected: `Equals(` + "`a`" + `, "\xff")`,
	},
	{
		desc:     "escaped dot in a key keeps its escape",
		in:       "Equals(`a\\.b`, `x`)",
		expected: "Equals(`a\\.b`, `x`)",
	},
	{
		desc:     "escaped backslash in a double-quoted key",
		in:       `Equals("back\\\\slash.x", "y")`,
		expected: "Equals(`back\\\\slash.x`, `y`)",
	},
	{
		desc:     "nested key",
		in:       "Equals(`user.name`, `John Snow`)",
		expected: "Equals(`user.name`, `John Snow`)",
	},
	{
		desc:     "empty value",
		in:       "Equals(`grp`, ``)",
		expected: "Equals(`grp`, ``)",
	},
}

func TestParseClaimsString(t *testing.T) {
	for _, test := range claimsStringTests {
		t.Run(test.desc, func(t *testing.T) {
			x, err := parseClaims(test.in)
			if err != nil {
				t.Fatalf("parseClaims(%q): %v", test.in, err)
			}
			got := x.String()
			if got != test.expected {
				t.Errorf("parseClaims(%q).String() =\n%s\nwant\n%s", test.in, got, test.expected)
			}
			y, err := parseClaims(got)
			if err != nil {
				t.Fatalf("parseClaims(%q) of the canonical form: %v", got, err)
			}
			if again := y.String(); again != got {
				t.Errorf("canonical form is not stable: %s reparses as %s", got, again)
			}
		})
	}
}

// claimsErrorTests lists invalid expressions and their exact errors. It also seeds FuzzParseClaims.
var claimsErrorTests = []struct {
	desc     string
	in       string
	expected string
}{
	{desc: "empty", in: "", expected: "offset 0: empty expression"},
	{desc: "blank", in: " \t\r\n ", expected: "offset 0: empty expression"},
	{
		desc:     "unknown function",
		in:       "Equal(`grp`, `admin`)",
		expected: `offset 0: unknown function; known: Equals, Prefix, Contains, SplitContains, OneOf`,
	},
	{
		desc:     "function names are case-sensitive",
		in:       "!equals(`grp`, `admin`)",
		expected: `offset 1: unknown function; known: Equals, Prefix, Contains, SplitContains, OneOf`,
	},
	{desc: "too few arguments", in: "Equals(`grp`)", expected: "offset 0: Equals takes 2 arguments (key, value), got 1"},
	{desc: "too many arguments", in: "Prefix(`a`, `b`, `c`)", expected: "offset 0: Prefix takes 2 arguments (key, prefix), got 3"},
	{desc: "no arguments", in: "Contains()", expected: "offset 0: Contains takes 2 arguments (key, value), got 0"},
	{
		desc:     "SplitContains arity",
		in:       "Equals(`a`, `1`) && SplitContains(`scope`, `writer`)",
		expected: "offset 20: SplitContains takes 3 arguments (key, separator, value), got 2",
	},
	{desc: "OneOf without values", in: "OneOf(`areas`)", expected: "offset 0: OneOf takes at least 2 arguments (key, value, ...), got 1"},
	{desc: "empty separator", in: "SplitContains(`scope`, ``, `x`)", expected: "offset 23: SplitContains separator must not be empty"},
	{desc: "dangling ||", in: "Equals(`grp`, `admin`) || ", expected: "offset 26: unexpected end of expression"},
	{desc: "leading ||", in: "|| Equals(`a`, `1`)", expected: `offset 0: unexpected "||"`},
	{desc: "double &&", in: "Equals(`a`, `1`) && && Equals(`b`, `2`)", expected: `offset 20: unexpected "&&"`},
	{desc: "triple bar", in: "Equals(`a`, `1`) ||| Equals(`b`, `2`)", expected: `offset 19: unexpected "|"`},
	{desc: "single ampersand", in: "Equals(`a`, `1`) & Equals(`b`, `2`)", expected: `offset 17: unexpected "&"`},
	{desc: "trailing call", in: "Equals(`a`, `1`) Equals(`b`, `2`)", expected: `offset 17: unexpected name`},
	{desc: "word operator", in: "Equals(`a`, `1`) and Equals(`b`, `2`)", expected: `offset 17: unexpected name`},
	{desc: "unclosed parenthesis", in: "(Equals(`a`, `1`)", expected: "offset 17: unexpected end of expression"},
	{desc: "extra closing parenthesis", in: "Equals(`a`, `1`))", expected: `offset 16: unexpected ")"`},
	{desc: "empty parentheses", in: "()", expected: `offset 1: unexpected ")"`},
	{desc: "lone not", in: "!", expected: "offset 1: unexpected end of expression"},
	{desc: "name without call", in: "Equals", expected: "offset 6: unexpected end of expression"},
	// A string is the configuration's data: errors say where it is, never what it says.
	{desc: "name then string", in: "Equals `a`", expected: "offset 7: unexpected string"},
	{desc: "missing comma", in: "Equals(`a` `1`)", expected: "offset 11: unexpected string"},
	{desc: "missing argument", in: "Equals(`a`, )", expected: `offset 12: unexpected ")"`},
	{desc: "trailing comma", in: "Equals(`a`, `1`,)", expected: `offset 16: unexpected ")"`},
	{desc: "leading comma", in: "Equals(, `1`)", expected: `offset 7: unexpected ","`},
	{desc: "unquoted argument", in: "Equals(a, `1`)", expected: `offset 7: unexpected name`},
	{desc: "nested call as argument", in: "OneOf(`a`, Equals(`b`, `c`))", expected: `offset 11: unexpected name`},
	{desc: "missing closing parenthesis of call", in: "Equals(`a`, `1`", expected: "offset 15: unexpected end of expression"},
	{
		desc:     "a long name is not quoted either",
		in:       "Equals(`a`, `1`) " + strings.Repeat("x", 50),
		expected: "offset 17: unexpected name",
	},
	{desc: "single-quoted argument", in: "Equals('a', `1`)", expected: "offset 7: single-quoted strings are not supported; use backquotes"},
	{desc: "unterminated raw string", in: "Equals(`a`, `1)", expected: "offset 12: unterminated string"},
	{desc: "bad escape in double-quoted string", in: `Equals("a\q", "1")`, expected: "offset 9: invalid escape sequence in string"},
	{desc: "empty key", in: "Equals(``, `1`)", expected: "offset 7: bad key path: empty key path"},
	{desc: "double dot in key", in: "Equals(`a..b`, `1`)", expected: "offset 7: bad key path: empty key at byte 2"},
	{desc: "leading dot in key", in: "Equals(`.a`, `1`)", expected: "offset 7: bad key path: empty key at byte 0"},
	{desc: "trailing dot in key", in: "Equals(`a.`, `1`)", expected: "offset 7: bad key path: empty key at byte 2"},
	{
		desc:     "bad escape in key",
		in:       "Equals(`a\\q`, `1`)",
		expected: "offset 7: bad key path: bad escape at byte 1: only \\. and \\\\ are allowed",
	},
	{
		desc:     "trailing backslash in key",
		in:       "Equals(`a\\`, `1`)",
		expected: "offset 7: bad key path: bad escape at byte 1: only \\. and \\\\ are allowed",
	},
	{
		desc:     "nesting one level too deep with parentheses",
		in:       strings.Repeat("(", maxClaimsDepth+1) + "Equals(`a`, `1`)" + strings.Repeat(")", maxClaimsDepth+1),
		expected: "offset 64: expression nested too deeply (max depth 64)",
	},
	{
		desc:     "nesting one level too deep with nots",
		in:       strings.Repeat("!", maxClaimsDepth+1) + "Equals(`a`, `1`)",
		expected: "offset 64: expression nested too deeply (max depth 64)",
	},
	{
		desc:     "nesting too deep with nots and parentheses",
		in:       strings.Repeat("!(", 40) + "Equals(`a`, `1`)" + strings.Repeat(")", 40),
		expected: "offset 64: expression nested too deeply (max depth 64)",
	},
	{
		desc:     "too long",
		in:       "Equals(`a`, `" + strings.Repeat("x", maxClaimsLen) + "`)",
		expected: "offset 4096: expression too long (max 4096 bytes)",
	},
}

func TestParseClaimsErrors(t *testing.T) {
	for _, test := range claimsErrorTests {
		t.Run(test.desc, func(t *testing.T) {
			x, err := parseClaims(test.in)
			if err == nil {
				t.Fatalf("parseClaims(%q) = %s, want error %q", test.in, x, test.expected)
			}
			if err.Error() != test.expected {
				t.Errorf("parseClaims(%q) error =\n%s\nwant\n%s", test.in, err, test.expected)
			}
		})
	}
}

func TestParseClaimsLimits(t *testing.T) {
	deepest := strings.Repeat("!(", maxClaimsDepth/2) + "Equals(`grp`, `admin`)" + strings.Repeat(")", maxClaimsDepth/2)
	x, err := parseClaims(deepest)
	if err != nil {
		t.Fatalf("parseClaims at the depth limit: %v", err)
	}
	if !evalClaims(x, decodeClaims(t, hubClaimsJSON)) {
		t.Errorf("%d double negations of a true call evaluated to false", maxClaimsDepth/2)
	}

	longest := "Equals(`grp`, `" + strings.Repeat("x", maxClaimsLen-len("Equals(`grp`, ``)")) + "`)"
	if len(longest) != maxClaimsLen {
		t.Fatalf("test expression is %d bytes, want %d", len(longest), maxClaimsLen)
	}
	if _, err := parseClaims(longest); err != nil {
		t.Errorf("parseClaims at the length limit: %v", err)
	}

	// A long flat chain stays within the depth limit: chains are flattened, not nested.
	chain := strings.Repeat("Equals(`grp`, `dev`) || ", 150) + "Equals(`grp`, `admin`)"
	x, err = parseClaims(chain)
	if err != nil {
		t.Fatalf("parseClaims of a chain of 151 calls: %v", err)
	}
	if !evalClaims(x, decodeClaims(t, hubClaimsJSON)) {
		t.Error("chain of 151 calls evaluated to false")
	}

	// The depth limit counts nesting, not operators: leaving a "!" or a ")" gives its level back, so
	// more siblings than maxClaimsDepth parse.
	for _, term := range []string{"!!Equals(`grp`, `admin`)", "((Equals(`grp`, `admin`)))"} {
		siblings := strings.Repeat(term+" && ", maxClaimsDepth) + term
		x, err = parseClaims(siblings)
		if err != nil {
			t.Fatalf("parseClaims of %d siblings %s: %v", maxClaimsDepth+1, term, err)
		}
		if !evalClaims(x, decodeClaims(t, hubClaimsJSON)) {
			t.Errorf("%d siblings %s evaluated to false", maxClaimsDepth+1, term)
		}
	}

	// Deep nesting is an error, never a stack overflow, whichever limit trips first.
	testCases := []struct {
		desc     string
		in       string
		expected string
	}{
		{desc: "10000 (", in: strings.Repeat("(", 10000), expected: "offset 4096: expression too long (max 4096 bytes)"},
		{desc: "10000 !", in: strings.Repeat("!", 10000), expected: "offset 4096: expression too long (max 4096 bytes)"},
		{desc: "4000 (", in: strings.Repeat("(", 4000), expected: "offset 64: expression nested too deeply (max depth 64)"},
		{desc: "4000 !", in: strings.Repeat("!", 4000), expected: "offset 64: expression nested too deeply (max depth 64)"},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			_, err := parseClaims(test.in)
			if err == nil || err.Error() != test.expected {
				t.Errorf("parseClaims error = %v, want %q", err, test.expected)
			}
		})
	}
}

// claimsEvalTests lists expressions and their value on a claims document. It also seeds FuzzParseClaims.
var claimsEvalTests = []struct {
	desc     string
	doc      string
	in       string
	expected bool
}{
	// Every example of the Traefik Hub reference holds on its document.
	{desc: "hub Equals", doc: hubClaimsJSON, in: "Equals(`grp`, `admin`)", expected: true},
	{desc: "hub Prefix", doc: hubClaimsJSON, in: "Prefix(`referrer`, `http://example.com`)", expected: true},
	{desc: "hub Contains string", doc: hubClaimsJSON, in: "Contains(`referrer`, `/foo/`)", expected: true},
	{desc: "hub Contains array", doc: hubClaimsJSON, in: "Contains(`areas`, `home`)", expected: true},
	{desc: "hub SplitContains", doc: hubClaimsJSON, in: "SplitContains(`scope`, ` `, `writer`)", expected: true},
	{desc: "hub OneOf", doc: hubClaimsJSON, in: "OneOf(`areas`, `office`, `lab`)", expected: true},
	{desc: "hub nested key", doc: hubClaimsJSON, in: "Equals(`user.name`, `John Snow`)", expected: true},
	{desc: "hub &&", doc: hubClaimsJSON, in: "Equals(`grp`, `admin`) && Equals(`user.status`, `undead`)", expected: true},
	{desc: "hub && with boolean", doc: hubClaimsJSON, in: "Equals(`grp`, `admin`) && Equals(`active`, `true`)", expected: true},
	{desc: "hub ||", doc: hubClaimsJSON, in: "Equals(`grp`, `admin`) || Equals(`grp`, `dev`)", expected: true},
	{desc: "hub || with boolean", doc: hubClaimsJSON, in: "Equals(`grp`, `admin`) || Equals(`active`, `true`)", expected: true},
	{desc: "hub !", doc: hubClaimsJSON, in: "!Equals(`grp`, `dev`)", expected: true},
	{desc: "hub ! testers", doc: hubClaimsJSON, in: "!Equals(`grp`, `testers`)", expected: true},

	// Their negations are false.
	{desc: "not hub Equals", doc: hubClaimsJSON, in: "!Equals(`grp`, `admin`)", expected: false},
	{desc: "not hub Prefix", doc: hubClaimsJSON, in: "!Prefix(`referrer`, `http://example.com`)", expected: false},
	{desc: "not hub Contains string", doc: hubClaimsJSON, in: "!Contains(`referrer`, `/foo/`)", expected: false},
	{desc: "not hub Contains array", doc: hubClaimsJSON, in: "!Contains(`areas`, `home`)", expected: false},
	{desc: "not hub SplitContains", doc: hubClaimsJSON, in: "!SplitContains(`scope`, ` `, `writer`)", expected: false},
	{desc: "not hub OneOf", doc: hubClaimsJSON, in: "!OneOf(`areas`, `office`, `lab`)", expected: false},
	{desc: "not hub nested key", doc: hubClaimsJSON, in: "!Equals(`user.name`, `John Snow`)", expected: false},
	{desc: "not hub &&", doc: hubClaimsJSON, in: "!(Equals(`grp`, `admin`) && Equals(`user.status`, `undead`))", expected: false},
	{desc: "not hub ||", doc: hubClaimsJSON, in: "!(Equals(`grp`, `admin`) || Equals(`grp`, `dev`))", expected: false},
	{desc: "not hub !", doc: hubClaimsJSON, in: "!!Equals(`grp`, `dev`)", expected: false},

	// Near misses.
	{desc: "Equals is exact", doc: hubClaimsJSON, in: "Equals(`grp`, `admi`)", expected: false},
	{desc: "Equals is case-sensitive", doc: hubClaimsJSON, in: "Equals(`grp`, `Admin`)", expected: false},
	{desc: "Prefix miss", doc: hubClaimsJSON, in: "Prefix(`referrer`, `https://`)", expected: false},
	{desc: "Contains string miss", doc: hubClaimsJSON, in: "Contains(`referrer`, `/baz/`)", expected: false},
	{desc: "Contains array is membership, not substring", doc: hubClaimsJSON, in: "Contains(`areas`, `hom`)", expected: false},
	{desc: "SplitContains is exact membership", doc: hubClaimsJSON, in: "SplitContains(`scope`, ` `, `write`)", expected: false},
	{desc: "SplitContains last piece", doc: hubClaimsJSON, in: "SplitContains(`scope`, ` `, `deploy`)", expected: true},
	{desc: "SplitContains with another separator", doc: hubClaimsJSON, in: "SplitContains(`scope`, `er `, `writ`)", expected: true},
	{desc: "SplitContains whole string without separator", doc: hubClaimsJSON, in: "SplitContains(`grp`, `,`, `admin`)", expected: true},
	{desc: "OneOf miss", doc: hubClaimsJSON, in: "OneOf(`areas`, `lab`, `dmz`)", expected: false},
	{desc: "OneOf on a string", doc: hubClaimsJSON, in: "OneOf(`grp`, `dev`, `admin`)", expected: true},
	{desc: "OneOf on a string miss", doc: hubClaimsJSON, in: "OneOf(`grp`, `dev`, `ops`)", expected: false},
	{desc: "Equals on an array element", doc: hubClaimsJSON, in: "Equals(`areas`, `home`)", expected: true},
	{desc: "Prefix on an array element", doc: hubClaimsJSON, in: "Prefix(`areas`, `off`)", expected: true},
	{desc: "Prefix on an array miss", doc: hubClaimsJSON, in: "Prefix(`areas`, `lab`)", expected: false},
	{desc: "Equals on an object", doc: hubClaimsJSON, in: "Equals(`user`, `John Snow`)", expected: false},
	{desc: "not Equals on an object", doc: hubClaimsJSON, in: "!Equals(`user`, `John Snow`)", expected: true},
	{desc: "&& short-circuits to false", doc: hubClaimsJSON, in: "Equals(`grp`, `dev`) && Equals(`grp`, `admin`)", expected: false},
	{desc: "precedence", doc: hubClaimsJSON, in: "Equals(`grp`, `admin`) || Equals(`grp`, `dev`) && Equals(`grp`, `ops`)", expected: true},
	{desc: "parentheses", doc: hubClaimsJSON, in: "(Equals(`grp`, `admin`) || Equals(`grp`, `dev`)) && Equals(`grp`, `ops`)", expected: false},

	// Missing keys make a call false, and its negation true.
	{desc: "missing key", doc: hubClaimsJSON, in: "Equals(`missing`, `x`)", expected: false},
	{desc: "not missing key", doc: hubClaimsJSON, in: "!Equals(`missing`, `x`)", expected: true},
	{desc: "missing nested key", doc: hubClaimsJSON, in: "Equals(`user.email`, `x`)", expected: false},
	{desc: "missing parent", doc: hubClaimsJSON, in: "Prefix(`org.name`, ``)", expected: false},
	{desc: "path through a string", doc: hubClaimsJSON, in: "Equals(`grp.name`, `admin`)", expected: false},
	{desc: "path through an array", doc: hubClaimsJSON, in: "OneOf(`areas.home`, `home`)", expected: false},
	{desc: "missing key in every function", doc: hubClaimsJSON, in: "Prefix(`x`, ``) || Contains(`x`, ``) || SplitContains(`x`, ` `, ``) || OneOf(`x`, ``)", expected: false},

	// Numbers compare by canonical text.
	{desc: "integer", doc: extraClaimsJSON, in: "Equals(`exp`, `1767225600`)", expected: true},
	{desc: "integer sent with an exponent", doc: extraClaimsJSON, in: "Equals(`big`, `1767225600`)", expected: true},
	{desc: "exponent form does not match", doc: extraClaimsJSON, in: "Equals(`big`, `1.7672256e+09`)", expected: false},
	{desc: "integer sent with a fraction", doc: extraClaimsJSON, in: "Equals(`exp_float`, `1767225600`)", expected: true},
	{desc: "fraction", doc: extraClaimsJSON, in: "Equals(`ratio`, `0.5`)", expected: true},
	{desc: "fraction in another form", doc: extraClaimsJSON, in: "Equals(`ratio`, `.5`)", expected: false},
	{desc: "negative zero", doc: extraClaimsJSON, in: "Equals(`neg_zero`, `0`)", expected: true},
	{desc: "integer beyond float64 precision", doc: extraClaimsJSON, in: "Equals(`huge`, `12345678901234567890`)", expected: true},
	{desc: "Prefix on a number", doc: extraClaimsJSON, in: "Prefix(`exp`, `1767`)", expected: true},
	{desc: "OneOf on a number", doc: extraClaimsJSON, in: "OneOf(`exp`, `0`, `1767225600`)", expected: true},
	{desc: "number in an array", doc: extraClaimsJSON, in: "Contains(`mixed`, `2.5`)", expected: true},
	{desc: "boolean in an array", doc: extraClaimsJSON, in: "Contains(`mixed`, `true`)", expected: true},

	// Booleans compare as true and false.
	{desc: "boolean", doc: hubClaimsJSON, in: "Equals(`active`, `true`)", expected: true},
	{desc: "boolean false", doc: hubClaimsJSON, in: "Equals(`active`, `false`)", expected: false},
	{desc: "boolean is lower case", doc: hubClaimsJSON, in: "Equals(`active`, `True`)", expected: false},

	// Escaped keys.
	{desc: "escaped dot", doc: extraClaimsJSON, in: "Equals(`a\\.b`, `x`)", expected: true},
	{desc: "unescaped dot is a path", doc: extraClaimsJSON, in: "Equals(`a.b`, `nested`)", expected: true},
	{desc: "escaped dot is not a path", doc: extraClaimsJSON, in: "Equals(`a\\.b`, `nested`)", expected: false},
	{desc: "escaped backslash", doc: extraClaimsJSON, in: "Equals(`back\\\\slash`, `y`)", expected: true},
	{desc: "escaped dot at the end of a key", doc: extraClaimsJSON, in: "Equals(`dot\\.`, `x`) || Contains(`user.name`, `Snow`)", expected: true},

	// Values of no text, and arrays that are empty or odd.
	{desc: "null", doc: extraClaimsJSON, in: "Equals(`nil`, `null`) || Equals(`nil`, ``)", expected: false},
	{desc: "not null", doc: extraClaimsJSON, in: "!Equals(`nil`, `null`)", expected: true},
	{desc: "object", doc: extraClaimsJSON, in: "Contains(`obj`, `k`) || Prefix(`obj`, ``)", expected: false},
	{desc: "empty array", doc: extraClaimsJSON, in: "OneOf(`none`, ``) || Equals(`none`, ``) || Contains(`none`, ``)", expected: false},
	{desc: "nested arrays and objects are not searched", doc: extraClaimsJSON, in: "Contains(`mixed`, `home`) || Equals(`mixed`, `x`)", expected: false},
	{desc: "audience array", doc: extraClaimsJSON, in: "Equals(`aud`, `web`) && !Equals(`aud`, `admin`)", expected: true},
	{desc: "SplitContains on array elements", doc: extraClaimsJSON, in: "SplitContains(`aud`, ` `, `api`)", expected: true},
	{desc: "SplitContains finds an empty piece", doc: extraClaimsJSON, in: "SplitContains(`spaced`, ` `, ``) && SplitContains(`csv`, `,`, ``)", expected: true},
	{desc: "SplitContains multi-byte separator", doc: extraClaimsJSON, in: "SplitContains(`spaced`, `  `, `b`)", expected: true},
}

// evalClaimsTree evaluates a syntax tree by recursion: the oracle for the compiled steps of eval.
func evalClaimsTree(x claimsNode, claims map[string]any) bool {
	switch e := x.(type) {
	case *callExpr:
		return evalCall(e, claims)
	case *notExpr:
		return !evalClaimsTree(e.x, claims)
	case *andExpr:
		for _, y := range e.allOf {
			if !evalClaimsTree(y, claims) {
				return false
			}
		}
		return true
	case *orExpr:
		for _, y := range e.anyOf {
			if evalClaimsTree(y, claims) {
				return true
			}
		}
		return false
	}
	panic(fmt.Sprintf("unknown node %T", x))
}

func TestClaimsEval(t *testing.T) {
	docs := map[string]map[string]any{
		hubClaimsJSON:   decodeClaims(t, hubClaimsJSON),
		extraClaimsJSON: decodeClaims(t, extraClaimsJSON),
	}
	for _, test := range claimsEvalTests {
		t.Run(test.desc, func(t *testing.T) {
			x, err := parseClaims(test.in)
			if err != nil {
				t.Fatalf("parseClaims(%q): %v", test.in, err)
			}
			if got := evalClaims(x, docs[test.doc]); got != test.expected {
				t.Errorf("%s = %t, want %t", test.in, got, test.expected)
			}
			if got := evalClaimsTree(x.root, docs[test.doc]); got != test.expected {
				t.Errorf("%s = %t by the tree, want %t", test.in, got, test.expected)
			}
		})
	}
}

// TestKeycloakClaimsExamples: the README's examples on Keycloak's claim shapes, on the answers of
// the e2e Keycloak-shaped IdP for a client with aud as an array and one with aud as a string.
func TestKeycloakClaimsExamples(t *testing.T) {
	admin := decodeClaims(t, `{"active":true,"azp":"billing-service","preferred_username":"service-account-billing-service","scope":"profile orders email","aud":["orders-api","account"],"realm_access":{"roles":["admin","offline_access"]},"resource_access":{"orders-api":{"roles":["orders:read","orders:write"]},"account":{"roles":["view-profile"]}}}`)
	reader := decodeClaims(t, `{"active":true,"azp":"reporting","preferred_username":"jane","scope":"profile email","aud":"orders-api","realm_access":{"roles":["offline_access"]},"resource_access":{"orders-api":{"roles":["orders:read"]}}}`)
	for _, test := range []struct {
		expr          string
		admin, reader bool
	}{
		{"Contains(`realm_access.roles`, `admin`)", true, false},
		{"Contains(`resource_access.orders-api.roles`, `orders:write`) && Equals(`aud`, `orders-api`)", true, false},
		{"Contains(`resource_access.orders-api.roles`, `orders:read`) && Equals(`aud`, `orders-api`)", true, true},
		{"Equals(`azp`, `billing-service`) || Prefix(`preferred_username`, `service-account-`)", true, false},
		{"SplitContains(`scope`, ` `, `orders`)", true, false},
	} {
		x, err := parseClaims(test.expr)
		if err != nil {
			t.Fatalf("parseClaims(%q): %v", test.expr, err)
		}
		if got := evalClaims(x, admin); got != test.admin {
			t.Errorf("%s on aud as an array = %t, want %t", test.expr, got, test.admin)
		}
		if got := evalClaims(x, reader); got != test.reader {
			t.Errorf("%s on aud as a string = %t, want %t", test.expr, got, test.reader)
		}
	}
}

func TestCompileClaims(t *testing.T) {
	testCases := []struct {
		desc     string
		in       string
		expected string
	}{
		// "single": evalClaims runs the one call without the step loop (claimsProgram.single).
		{desc: "call", in: "Equals(`a`, `1`)", expected: "0 call a; single"},
		{desc: "not", in: "!!Equals(`a`, `1`)", expected: "0 call a; 1 not; 2 not"},
		{desc: "or", in: "Equals(`a`, `1`) || Equals(`b`, `1`) || Equals(`c`, `1`)", expected: "0 call a; 1 jt 5; 2 call b; 3 jt 5; 4 call c"},
		{desc: "and", in: "Equals(`a`, `1`) && Equals(`b`, `1`)", expected: "0 call a; 1 jf 3; 2 call b"},
		{
			desc:     "and in or",
			in:       "Equals(`a`, `1`) || Equals(`b`, `1`) && !Equals(`c`, `1`)",
			expected: "0 call a; 1 jt 6; 2 call b; 3 jf 6; 4 call c; 5 not",
		},
		{
			desc:     "not of or in and",
			in:       "!(Equals(`a`, `1`) || Equals(`b`, `1`)) && Equals(`c`, `1`)",
			expected: "0 call a; 1 jt 3; 2 call b; 3 not; 4 jf 6; 5 call c",
		},
	}
	opNames := []string{"call", "not", "jt", "jf"}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			x, err := parseClaims(test.in)
			if err != nil {
				t.Fatalf("parseClaims(%q): %v", test.in, err)
			}
			var parts []string
			for i, step := range x.steps {
				switch step.op {
				case stepCall:
					parts = append(parts, fmt.Sprintf("%d call %s", i, step.call.key))
				case stepNot:
					parts = append(parts, fmt.Sprintf("%d not", i))
				default:
					parts = append(parts, fmt.Sprintf("%d %s %d", i, opNames[step.op], step.to))
				}
			}
			if x.single != nil {
				if x.single != x.steps[0].call {
					t.Errorf("single of %s is not its one call", test.in)
				}
				parts = append(parts, "single")
			}
			if got := strings.Join(parts, "; "); got != test.expected {
				t.Errorf("steps of %s:\n%s\nwant\n%s", test.in, got, test.expected)
			}
		})
	}
}

// TestSplitContains calls splitContains directly: its empty-separator branch keeps the loop finite
// for a separator the parser never lets through, so no expression reaches it.
func TestSplitContains(t *testing.T) {
	testCases := []struct {
		s, sep, want string
		expected     bool
	}{
		{s: "a", sep: "", want: "a", expected: true},
		{s: "a b", sep: "", want: "a", expected: false},
		{s: "a b", sep: " ", want: "a", expected: true},
		{s: "a b", sep: " ", want: "b", expected: true},
		{s: "a b", sep: " ", want: "a b", expected: false},
		{s: "a  b", sep: " ", want: "", expected: true},
		{s: "ab", sep: "b", want: "", expected: true},
		{s: "ab", sep: "ab", want: "a", expected: false},
	}
	for _, test := range testCases {
		if got := splitContains(test.s, test.sep, test.want); got != test.expected {
			t.Errorf("splitContains(%q, %q, %q) = %v, want %v", test.s, test.sep, test.want, got, test.expected)
		}
	}
}

func TestClaimsEvalNoClaims(t *testing.T) {
	x, err := parseClaims("!Equals(`a.b`, `1`) && !OneOf(`c`, `2`)")
	if err != nil {
		t.Fatal(err)
	}
	if !evalClaims(x, nil) {
		t.Error("eval(nil) = false, want true: every call is false on no claims")
	}
	if !evalClaims(x, map[string]any{}) {
		t.Error("eval of no claims = false, want true")
	}
}

func TestSplitClaimPath(t *testing.T) {
	testCases := []struct {
		desc     string
		path     string
		expected []string
		err      string
	}{
		{desc: "one key", path: "grp", expected: []string{"grp"}},
		{desc: "nested", path: "user.name", expected: []string{"user", "name"}},
		{desc: "three levels", path: "a.b.c", expected: []string{"a", "b", "c"}},
		{desc: "escaped dot", path: `a\.b`, expected: []string{"a.b"}},
		{desc: "escaped dot only", path: `\.`, expected: []string{"."}},
		{desc: "escaped backslash", path: `a\\b`, expected: []string{`a\b`}},
		{desc: "escaped backslash then dot", path: `a\\.b`, expected: []string{`a\`, "b"}},
		{desc: "escaped backslash then escaped dot", path: `a\\\.b`, expected: []string{`a\.b`}},
		{desc: "escaped dots around a separator", path: `\..\.`, expected: []string{".", "."}},
		{desc: "spaces and unicode", path: "é x.ü", expected: []string{"é x", "ü"}},
		{desc: "empty", path: "", err: "empty key path"},
		{desc: "single dot", path: ".", err: "empty key at byte 0"},
		{desc: "leading dot", path: ".a", err: "empty key at byte 0"},
		{desc: "trailing dot", path: "a.", err: "empty key at byte 2"},
		{desc: "double dot", path: "ab..c", err: "empty key at byte 3"},
		{desc: "bad escape", path: `a.\n`, err: `bad escape at byte 2: only \. and \\ are allowed`},
		{desc: "trailing backslash", path: `ab\`, err: `bad escape at byte 2: only \. and \\ are allowed`},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			keys, err := splitClaimPath(test.path)
			if test.err != "" {
				if err == nil || err.Error() != test.err {
					t.Fatalf("splitClaimPath(%q) = %q, %v; want error %q", test.path, keys, err, test.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("splitClaimPath(%q): %v", test.path, err)
			}
			if !reflect.DeepEqual(keys, test.expected) {
				t.Errorf("splitClaimPath(%q) = %q, want %q", test.path, keys, test.expected)
			}
		})
	}
}

func TestLookupClaim(t *testing.T) {
	claims := decodeClaims(t, extraClaimsJSON)
	testCases := []struct {
		desc     string
		keys     []string
		expected any
		found    bool
	}{
		{desc: "top level", keys: []string{"grp"}, expected: "admin", found: true},
		{desc: "nested", keys: []string{"user", "name"}, expected: "John Snow", found: true},
		{desc: "key with a dot", keys: []string{"a.b"}, expected: "x", found: true},
		{desc: "empty key", keys: []string{"dot.", ""}, expected: "empty", found: true},
		{desc: "number", keys: []string{"exp"}, expected: json.Number("1767225600"), found: true},
		{desc: "object", keys: []string{"obj"}, expected: map[string]any{"k": "v"}, found: true},
		{desc: "array", keys: []string{"areas"}, expected: []any{"office", "home"}, found: true},
		{desc: "null is found", keys: []string{"nil"}, expected: nil, found: true},
		{desc: "missing", keys: []string{"missing"}},
		{desc: "missing nested", keys: []string{"user", "email"}},
		{desc: "through a string", keys: []string{"grp", "x"}},
		{desc: "through an array", keys: []string{"areas", "0"}},
		{desc: "through null", keys: []string{"nil", "x"}},
		{desc: "no keys", keys: nil},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			v, found := lookupClaim(claims, test.keys)
			if found != test.found || !reflect.DeepEqual(v, test.expected) {
				t.Errorf("lookupClaim(%q) = %#v, %t; want %#v, %t", test.keys, v, found, test.expected, test.found)
			}
		})
	}

	if v, found := lookupClaim(nil, []string{"a", "b"}); found || v != nil {
		t.Errorf("lookupClaim(nil) = %#v, %t; want nil, false", v, found)
	}
}

func TestClaimText(t *testing.T) {
	testCases := []struct {
		desc     string
		value    any
		expected string
		ok       bool
	}{
		{desc: "string", value: "admin", expected: "admin", ok: true},
		{desc: "empty string", value: "", expected: "", ok: true},
		{desc: "true", value: true, expected: "true", ok: true},
		{desc: "false", value: false, expected: "false", ok: true},
		{desc: "integer", value: json.Number("1767225600"), expected: "1767225600", ok: true},
		{desc: "negative integer", value: json.Number("-42"), expected: "-42", ok: true},
		{desc: "zero", value: json.Number("0"), expected: "0", ok: true},
		{desc: "negative zero", value: json.Number("-0"), expected: "0", ok: true},
		{desc: "negative zero float", value: json.Number("-0.0"), expected: "0", ok: true},
		{desc: "integral fraction", value: json.Number("1767225600.0"), expected: "1767225600", ok: true},
		{desc: "integral exponent", value: json.Number("1.7672256e+09"), expected: "1767225600", ok: true},
		{desc: "integral upper-case exponent", value: json.Number("1.7672256E9"), expected: "1767225600", ok: true},
		{desc: "integral negative exponent", value: json.Number("100e-2"), expected: "1", ok: true},
		{desc: "fraction", value: json.Number("0.5"), expected: "0.5", ok: true},
		{desc: "fraction with exponent", value: json.Number("5e-1"), expected: "0.5", ok: true},
		{desc: "fraction with trailing zeros", value: json.Number("2.50"), expected: "2.5", ok: true},
		{desc: "negative fraction", value: json.Number("-1.25"), expected: "-1.25", ok: true},
		{desc: "small", value: json.Number("1e-7"), expected: "0.0000001", ok: true},
		{desc: "large integral", value: json.Number("1e21"), expected: "1000000000000000000000", ok: true},
		{desc: "integer beyond float64 precision", value: json.Number("12345678901234567890"), expected: "12345678901234567890", ok: true},
		{desc: "out of range", value: json.Number("1e400"), expected: "1e400", ok: true},
		{desc: "float64", value: 1.7672256e+09, expected: "1767225600", ok: true},
		{desc: "float64 fraction", value: 0.25, expected: "0.25", ok: true},
		{desc: "nil", value: nil},
		{desc: "array", value: []any{"a"}},
		{desc: "object", value: map[string]any{"a": "b"}},
		{desc: "int is not a decoded JSON type", value: 1},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			got, ok := claimText(test.value)
			if got != test.expected || ok != test.ok {
				t.Errorf("claimText(%#v) = %q, %t; want %q, %t", test.value, got, ok, test.expected, test.ok)
			}
		})
	}
}
