package oauthintrospection

// The claims language is the one of Traefik Hub's oAuthIntrospection and JWT middlewares:
//
//	Equals(`grp`, `admin`) && (Prefix(`referrer`, `http://example.com`) || !OneOf(`areas`, `lab`, `dmz`))
//
// It is parsed once, when the middleware is created, into a syntax tree that is compiled into a flat
// list of steps, which are evaluated on each RFC 7662 introspection response. The lexer and the
// recursive-descent parser (or -> and -> not -> atom) follow go/build/constraint. Everything that can
// fail is checked at parse time, so evaluation never fails: a missing claim, or a claim of a type a
// function does not apply to, only makes that call false.
//
// Every function compares text: a string as is, a JSON number by its canonical text (see claimText),
// a boolean as "true" or "false". On an array claim a function holds when it holds for any scalar
// element; nested arrays and objects inside the array are skipped, never flattened. Traefik Hub
// documents arrays only for Contains and OneOf; Equals, Prefix and SplitContains apply the same
// any-element rule because RFC 7662 and RFC 7519 let an IdP send claims such as "aud" either as a
// string or as an array of strings, and Equals(`aud`, `api`) should mean the same for both forms.
// Contains is the one function whose meaning changes on an array, as Hub documents: a substring of a
// scalar, but exact membership in an array.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on a claims expression. They are checked at parse time and bound the depth of the parser's
// recursion, and so of the tree that the compiler and String walk, so no expression can exhaust the
// stack.
const (
	// maxClaimsLen is the longest accepted expression, in bytes.
	maxClaimsLen = 4096
	// maxClaimsDepth is the deepest accepted nesting of parentheses and "!" operators, counted together.
	maxClaimsDepth = 64
)

// claimsExpr is a parsed claims expression.
type claimsExpr interface {
	// eval reports whether the expression holds for claims; it never panics and never fails.
	eval(claims map[string]any) bool
	// String returns the canonical form of the expression, which parses back to the same form.
	String() string
}

// claimsNode is a node of the syntax tree: *orExpr, *andExpr, *notExpr or *callExpr.
type claimsNode interface {
	String() string
}

// orExpr is a chain of operands joined by ||. It never holds an *orExpr operand: the parser flattens them.
//
// orExpr and andExpr must differ in their field names, not only in their type names: Yaegi builds
// interpreted struct types with reflect.StructOf, so two structs with the same fields are one type to
// it, and x.(*orExpr) would then also match an *andExpr.
type orExpr struct {
	anyOf []claimsNode
}

// andExpr is a chain of operands joined by &&. It never holds an *andExpr operand: the parser flattens them.
type andExpr struct {
	allOf []claimsNode
}

// notExpr is !x.
type notExpr struct {
	x claimsNode
}

// callExpr is a function call. It is built only by newCallExpr, which checks the arity, so the
// evaluation may index args without checks.
type callExpr struct {
	fn   claimsFunc
	key  string   // the key argument as written (with its escapes), for String
	keys []string // the key split into a path by splitClaimPath
	args []string // the arguments after the key
	// member tells that on an array the call means membership of an element in args, which holds
	// for Equals, Contains and OneOf.
	member bool
}

// claimsFunc identifies a function of the claims language.
type claimsFunc int

// The functions, in the order of claimsFuncs.
const (
	funcEquals claimsFunc = iota
	funcPrefix
	funcContains
	funcSplitContains
	funcOneOf
)

// claimsFuncSpec describes a function: its name and how many arguments it takes, the key included.
type claimsFuncSpec struct {
	name    string
	minArgs int
	maxArgs int    // -1 means no upper bound
	usage   string // the arity, as arity errors state it
}

// claimsFuncs lists the functions, indexed by claimsFunc.
var claimsFuncs = []claimsFuncSpec{
	{name: "Equals", minArgs: 2, maxArgs: 2, usage: "2 arguments (key, value)"},
	{name: "Prefix", minArgs: 2, maxArgs: 2, usage: "2 arguments (key, prefix)"},
	{name: "Contains", minArgs: 2, maxArgs: 2, usage: "2 arguments (key, value)"},
	{name: "SplitContains", minArgs: 3, maxArgs: 3, usage: "3 arguments (key, separator, value)"},
	{name: "OneOf", minArgs: 2, maxArgs: -1, usage: "at least 2 arguments (key, value, ...)"},
}

// claimsProgram is a claims expression compiled for evaluation: the syntax tree, for String, and the
// same tree flattened into steps that eval runs in a single loop. Under Yaegi every interpreted call
// costs microseconds and a few dozen allocations (a method call through an interface about 5 µs, a
// plain function call about 1.3 µs), so walking the tree with an eval method per node took three to
// five times as long as this loop, which calls only plain functions, and only for the function calls
// of the expression that it must evaluate.
type claimsProgram struct {
	root  claimsNode
	steps []claimsStep
}

// claimsStep is one step of a claimsProgram. The steps share one boolean register: stepCall sets it,
// stepNot negates it, and the conditional jumps skip the rest of an || or && chain whose value the
// register already holds, which is how the loop short-circuits.
type claimsStep struct {
	op   claimsOp
	call *callExpr // for stepCall
	to   int       // the index of the step to jump to; len(steps) ends the program
}

// claimsOp is the operation of a claimsStep.
type claimsOp int

// The operations.
const (
	stepCall claimsOp = iota
	stepNot
	stepJumpIfTrue
	stepJumpIfFalse
)

// newClaimsProgram compiles root.
func newClaimsProgram(root claimsNode) *claimsProgram {
	return &claimsProgram{root: root, steps: compileClaims(root, nil)}
}

// compileClaims appends the steps that leave the value of x in the register.
func compileClaims(x claimsNode, steps []claimsStep) []claimsStep {
	switch e := x.(type) {
	case *callExpr:
		return append(steps, claimsStep{op: stepCall, call: e})
	case *notExpr:
		steps = compileClaims(e.x, steps)
		return append(steps, claimsStep{op: stepNot})
	case *orExpr:
		return compileChain(e.anyOf, stepJumpIfTrue, steps)
	case *andExpr:
		return compileChain(e.allOf, stepJumpIfFalse, steps)
	}
	return steps
}

// compileChain appends the steps of an || (jump stepJumpIfTrue) or && (jump stepJumpIfFalse) chain:
// each operand but the last is followed by a jump past the chain, taken when the register already
// decides the chain's value.
func compileChain(list []claimsNode, jump claimsOp, steps []claimsStep) []claimsStep {
	var jumps []int
	last := len(list) - 1
	for i, x := range list {
		steps = compileClaims(x, steps)
		if i < last {
			jumps = append(jumps, len(steps))
			steps = append(steps, claimsStep{op: jump})
		}
	}
	end := len(steps)
	for _, j := range jumps {
		steps[j].to = end
	}
	return steps
}

// eval runs the steps on claims. It only reads the program and the claims, so one program serves
// concurrent requests.
func (p *claimsProgram) eval(claims map[string]any) bool {
	reg := false
	steps := p.steps
	for i := 0; i < len(steps); i++ {
		switch steps[i].op {
		case stepCall:
			reg = evalCall(steps[i].call, claims)
		case stepNot:
			reg = !reg
		case stepJumpIfTrue:
			if reg {
				i = steps[i].to - 1
			}
		case stepJumpIfFalse:
			if !reg {
				i = steps[i].to - 1
			}
		}
	}
	return reg
}

// String returns the canonical form of the expression.
func (p *claimsProgram) String() string {
	return p.root.String()
}

// evalCall reports whether the call c holds for claims. On an array claim, it holds when it holds
// for any element.
func evalCall(c *callExpr, claims map[string]any) bool {
	v, ok := lookupClaim(claims, c.keys)
	if !ok {
		return false
	}
	arr, isArr := v.([]any)
	if !isArr {
		return matchClaim(c, v, false)
	}
	for _, el := range arr {
		s, isStr := el.(string)
		if !isStr || !c.member {
			if matchClaim(c, el, true) {
				return true
			}
			continue
		}
		// Inline rather than a call per element, which under Yaegi costs microseconds.
		for _, want := range c.args {
			if s == want {
				return true
			}
		}
	}
	return false
}

// matchClaim reports whether the scalar v satisfies the call c. inArray tells that v is an element
// of an array claim, where Contains means membership rather than substring.
func matchClaim(c *callExpr, v any, inArray bool) bool {
	s, ok := v.(string)
	if !ok {
		// Only numbers and booleans need converting; strings skip the interpreted call.
		s, ok = claimText(v)
		if !ok {
			return false
		}
	}
	switch c.fn {
	case funcEquals:
		return s == c.args[0]
	case funcPrefix:
		return strings.HasPrefix(s, c.args[0])
	case funcContains:
		if inArray {
			return s == c.args[0]
		}
		return strings.Contains(s, c.args[0])
	case funcSplitContains:
		return splitContains(s, c.args[0], c.args[1])
	case funcOneOf:
		return oneOf(s, c.args)
	}
	return false
}

// splitContains reports whether want is one of the pieces of s split by sep, as strings.Split would
// cut them, without allocating the pieces.
func splitContains(s, sep, want string) bool {
	if sep == "" {
		// The parser rejects an empty separator; this only keeps the loop below finite.
		return s == want
	}
	for {
		i := strings.Index(s, sep)
		if i < 0 {
			return s == want
		}
		if s[:i] == want {
			return true
		}
		s = s[i+len(sep):]
	}
}

// oneOf reports whether s equals one of values.
func oneOf(s string, values []string) bool {
	for _, v := range values {
		if s == v {
			return true
		}
	}
	return false
}

// lookupClaim walks nested JSON objects (map[string]any) along keys; false if any step is missing or
// not an object.
func lookupClaim(claims map[string]any, keys []string) (any, bool) {
	if len(keys) == 1 {
		// Most keys are top-level; under Yaegi this path costs a third of the loop below.
		v, ok := claims[keys[0]]
		return v, ok
	}
	if len(keys) == 0 {
		return nil, false
	}
	cur := claims
	last := len(keys) - 1
	for i := 0; i < last; i++ {
		next, ok := cur[keys[i]].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	v, ok := cur[keys[last]]
	return v, ok
}

// claimText returns the canonical text of a scalar claim value: a string as is, a JSON number by its
// canonical text (see numberText), a boolean as "true" or "false". ok is false for anything else
// (nil, arrays, objects). A float64 is accepted too, as if the claims were decoded without UseNumber.
func claimText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return numberText(string(x)), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case float64:
		return floatText(x), true
	}
	return "", false
}

// numberText returns the canonical text of a JSON number literal, so that an IdP sending
// 1767225600, 1767225600.0 or 1.7672256e+09 matches the same expression value "1767225600".
// An integer literal is kept as written, without a float round trip, so that integers beyond
// float64 precision still compare exactly; any other literal is printed by floatText.
func numberText(n string) string {
	if isIntLiteral(n) {
		if n == "-0" {
			return "0"
		}
		return n
	}
	f, err := strconv.ParseFloat(n, 64)
	if err != nil {
		// Out of float64 range: keep the IdP's text rather than print an infinity.
		return n
	}
	return floatText(f)
}

// floatText prints f in decimal without an exponent: integral values as integers ("1767225600"),
// others with the fewest digits that round-trip ("0.5"). Negative zero prints as "0".
func floatText(f float64) string {
	if f == 0 {
		return "0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// isIntLiteral reports whether n is an optional minus sign followed by decimal digits only.
func isIntLiteral(n string) bool {
	digits := strings.TrimPrefix(n, "-")
	// One compiled call instead of a byte loop, which the interpreter runs slowly.
	return digits != "" && strings.TrimLeft(digits, "0123456789") == ""
}

// splitClaimPath splits a dot-separated claim path into keys: `\.` is a literal dot, `\\` a literal
// backslash; any other backslash sequence, an empty key (leading/trailing/double dot), or an empty
// path is an error.
func splitClaimPath(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("empty key path")
	}
	var keys []string
	var key []byte
	start := 0 // where the current key starts, for errors
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch c {
		case '\\':
			if i+1 == len(path) || (path[i+1] != '.' && path[i+1] != '\\') {
				return nil, fmt.Errorf(`bad escape at byte %d: only \. and \\ are allowed`, i)
			}
			i++
			key = append(key, path[i])
		case '.':
			if len(key) == 0 {
				return nil, fmt.Errorf("empty key at byte %d", start)
			}
			keys = append(keys, string(key))
			key = key[:0]
			start = i + 1
		default:
			key = append(key, c)
		}
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("empty key at byte %d", start)
	}
	keys = append(keys, string(key))
	return keys, nil
}

func (e *orExpr) String() string {
	return joinClaimsNodes(e.anyOf, " || ")
}

func (e *andExpr) String() string {
	return joinClaimsNodes(e.allOf, " && ")
}

func (e *notExpr) String() string {
	return "!" + operandString(e.x)
}

func (e *callExpr) String() string {
	var b strings.Builder
	b.WriteString(claimsFuncs[e.fn].name)
	b.WriteByte('(')
	b.WriteString(quoteClaimsArg(e.key))
	for _, a := range e.args {
		b.WriteString(", ")
		b.WriteString(quoteClaimsArg(a))
	}
	b.WriteByte(')')
	return b.String()
}

// joinClaimsNodes prints the operands of a chain joined by sep.
func joinClaimsNodes(list []claimsNode, sep string) string {
	parts := make([]string, len(list))
	for i, x := range list {
		parts[i] = operandString(x)
	}
	return strings.Join(parts, sep)
}

// operandString prints x as the operand of an operator. The canonical form parenthesizes every
// && or || chain that is an operand of another operator, so precedence is always explicit and
// a || (b && c) never reads as (a || b) && c; calls and ! operands need no parentheses.
func operandString(x claimsNode) string {
	if _, ok := x.(*orExpr); ok {
		return "(" + x.String() + ")"
	}
	if _, ok := x.(*andExpr); ok {
		return "(" + x.String() + ")"
	}
	return x.String()
}

// quoteClaimsArg prints a string argument: backquoted when it can be, as Traefik Hub writes them, and
// as a double-quoted Go string otherwise (a backquote, a control character or invalid UTF-8).
func quoteClaimsArg(s string) string {
	if strconv.CanBackquote(s) {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

// claimsTokenKind is the kind of a token.
type claimsTokenKind int

// The token kinds.
const (
	tokEOF claimsTokenKind = iota
	tokIdent
	tokString
	tokLParen
	tokRParen
	tokComma
	tokNot
	tokAnd
	tokOr
)

// claimsToken is a token of a claims expression.
type claimsToken struct {
	kind claimsTokenKind
	off  int    // byte offset in the expression
	text string // the source text of the token; empty for tokEOF
	val  string // the value of a tokString
}

// lexClaims splits s into tokens. The last token is always a tokEOF at offset len(s).
func lexClaims(s string) ([]claimsToken, error) {
	var toks []claimsToken
	i := 0
	for {
		i = skipClaimsSpace(s, i)
		if i == len(s) {
			toks = append(toks, claimsToken{kind: tokEOF, off: i})
			return toks, nil
		}
		tok, err := lexClaimsToken(s, i)
		if err != nil {
			return nil, err
		}
		toks = append(toks, tok)
		i += len(tok.text)
	}
}

// skipClaimsSpace returns the offset of the first byte at or after i that is not white space.
func skipClaimsSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
		i++
	}
	return i
}

// lexClaimsToken reads the token that starts at s[i], which is not white space.
func lexClaimsToken(s string, i int) (claimsToken, error) {
	c := s[i]
	switch c {
	case '(':
		return claimsToken{kind: tokLParen, off: i, text: "("}, nil
	case ')':
		return claimsToken{kind: tokRParen, off: i, text: ")"}, nil
	case ',':
		return claimsToken{kind: tokComma, off: i, text: ","}, nil
	case '!':
		return claimsToken{kind: tokNot, off: i, text: "!"}, nil
	case '&':
		if strings.HasPrefix(s[i:], "&&") {
			return claimsToken{kind: tokAnd, off: i, text: "&&"}, nil
		}
	case '|':
		if strings.HasPrefix(s[i:], "||") {
			return claimsToken{kind: tokOr, off: i, text: "||"}, nil
		}
	case '`':
		return lexRawString(s, i)
	case '"':
		return lexQuotedString(s, i)
	case '\'':
		return claimsToken{}, fmt.Errorf("offset %d: single-quoted strings are not supported; use backquotes", i)
	}
	if isIdentByte(c) && (c < '0' || c > '9') {
		j := i + 1
		for j < len(s) && isIdentByte(s[j]) {
			j++
		}
		return claimsToken{kind: tokIdent, off: i, text: s[i:j]}, nil
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return claimsToken{}, fmt.Errorf("offset %d: unexpected %s", i, strconv.Quote(s[i:i+size]))
}

// isIdentByte reports whether c may appear in a function name.
func isIdentByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// lexRawString reads the backquoted string that starts at s[i]. As in Go, its value is its text
// between the backquotes, and it cannot contain a backquote.
func lexRawString(s string, i int) (claimsToken, error) {
	n := strings.IndexByte(s[i+1:], '`')
	if n < 0 {
		return claimsToken{}, fmt.Errorf("offset %d: unterminated string", i)
	}
	end := i + n + 2
	return claimsToken{kind: tokString, off: i, text: s[i:end], val: s[i+1 : end-1]}, nil
}

// lexQuotedString reads the double-quoted Go string that starts at s[i] and unquotes it, escape by
// escape, so that an error can point at the bad escape. A byte of invalid UTF-8 is kept as is.
func lexQuotedString(s string, i int) (claimsToken, error) {
	var val []byte
	j := i + 1
	for {
		if j == len(s) || s[j] == '\n' {
			return claimsToken{}, fmt.Errorf("offset %d: unterminated string", i)
		}
		if s[j] == '"' {
			break
		}
		r, multibyte, tail, err := strconv.UnquoteChar(s[j:], '"')
		if err != nil {
			return claimsToken{}, fmt.Errorf("offset %d: invalid escape sequence in string", j)
		}
		switch {
		case r == utf8.RuneError && s[j] != '\\':
			// A raw byte that is not UTF-8 (or a raw U+FFFD): copy the source bytes.
			val = append(val, s[j:len(s)-len(tail)]...)
		case r < utf8.RuneSelf || !multibyte:
			val = append(val, byte(r))
		default:
			val = utf8.AppendRune(val, r)
		}
		j = len(s) - len(tail)
	}
	return claimsToken{kind: tokString, off: i, text: s[i : j+1], val: string(val)}, nil
}

// claimsParser is a recursive-descent parser over the tokens of one expression.
type claimsParser struct {
	toks  []claimsToken
	pos   int
	depth int // the current nesting of parentheses and "!", bounded by maxClaimsDepth
}

// parseClaims parses s. Errors look like `offset 17: unexpected "||"` (byte offset into s, 0-based);
// the caller prefixes "claims: ". An empty or all-blank s is an error ("offset 0: empty expression").
func parseClaims(s string) (claimsExpr, error) {
	if len(s) > maxClaimsLen {
		return nil, fmt.Errorf("offset %d: expression too long (max %d bytes)", maxClaimsLen, maxClaimsLen)
	}
	toks, err := lexClaims(s)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tokEOF {
		return nil, errors.New("offset 0: empty expression")
	}
	p := &claimsParser{toks: toks}
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokEOF {
		return nil, p.unexpected()
	}
	return newClaimsProgram(x), nil
}

// peek returns the current token. The parser never moves past the final tokEOF.
func (p *claimsParser) peek() claimsToken {
	return p.toks[p.pos]
}

// unexpected returns the error for the current token.
func (p *claimsParser) unexpected() error {
	tok := p.peek()
	if tok.kind == tokEOF {
		return fmt.Errorf("offset %d: unexpected end of expression", tok.off)
	}
	// A string or a name may be the configuration's data (a value left unquoted): the offset says
	// where it is, never what it says. Operators are quoted.
	switch tok.kind {
	case tokString:
		return fmt.Errorf("offset %d: unexpected string", tok.off)
	case tokIdent:
		return fmt.Errorf("offset %d: unexpected name", tok.off)
	}
	return fmt.Errorf("offset %d: unexpected %s", tok.off, strconv.Quote(tok.text))
}

// enter accounts for one more level of nesting at tok, a "(" or "!".
func (p *claimsParser) enter(tok claimsToken) error {
	p.depth++
	if p.depth > maxClaimsDepth {
		return fmt.Errorf("offset %d: expression nested too deeply (max depth %d)", tok.off, maxClaimsDepth)
	}
	return nil
}

// parseOr parses operands joined by ||, flattening operands that are themselves || chains.
func (p *claimsParser) parseOr() (claimsNode, error) {
	var list []claimsNode
	for {
		x, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if or, ok := x.(*orExpr); ok {
			list = append(list, or.anyOf...)
		} else {
			list = append(list, x)
		}
		if p.peek().kind != tokOr {
			break
		}
		p.pos++
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return &orExpr{anyOf: list}, nil
}

// parseAnd parses operands joined by &&, flattening operands that are themselves && chains.
func (p *claimsParser) parseAnd() (claimsNode, error) {
	var list []claimsNode
	for {
		x, err := p.parseNot()
		if err != nil {
			return nil, err
		}
		if and, ok := x.(*andExpr); ok {
			list = append(list, and.allOf...)
		} else {
			list = append(list, x)
		}
		if p.peek().kind != tokAnd {
			break
		}
		p.pos++
	}
	if len(list) == 1 {
		return list[0], nil
	}
	return &andExpr{allOf: list}, nil
}

// parseNot parses an atom preceded by any number of "!".
func (p *claimsParser) parseNot() (claimsNode, error) {
	tok := p.peek()
	if tok.kind != tokNot {
		return p.parseAtom()
	}
	if err := p.enter(tok); err != nil {
		return nil, err
	}
	p.pos++
	x, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	p.depth--
	return &notExpr{x: x}, nil
}

// parseAtom parses a parenthesized expression or a function call.
func (p *claimsParser) parseAtom() (claimsNode, error) {
	tok := p.peek()
	switch tok.kind {
	case tokLParen:
		return p.parseParen(tok)
	case tokIdent:
		return p.parseCall(tok)
	}
	return nil, p.unexpected()
}

// parseParen parses "(" expression ")"; lparen is the current token.
func (p *claimsParser) parseParen(lparen claimsToken) (claimsNode, error) {
	if err := p.enter(lparen); err != nil {
		return nil, err
	}
	p.pos++
	x, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tokRParen {
		return nil, p.unexpected()
	}
	p.pos++
	p.depth--
	return x, nil
}

// parseCall parses name "(" string {"," string} ")"; name is the current token.
func (p *claimsParser) parseCall(name claimsToken) (claimsNode, error) {
	fn, ok := lookupClaimsFunc(name.text)
	if !ok {
		return nil, fmt.Errorf("offset %d: unknown function; known: %s", name.off, claimsFuncNames())
	}
	p.pos++
	if p.peek().kind != tokLParen {
		return nil, p.unexpected()
	}
	p.pos++
	args, err := p.parseArgs()
	if err != nil {
		return nil, err
	}
	return newCallExpr(fn, name, args)
}

// parseArgs parses the string arguments of a call and its closing ")", after the "(".
func (p *claimsParser) parseArgs() ([]claimsToken, error) {
	var args []claimsToken
	if p.peek().kind == tokRParen {
		p.pos++
		return args, nil
	}
	for {
		tok := p.peek()
		if tok.kind != tokString {
			return nil, p.unexpected()
		}
		args = append(args, tok)
		p.pos++
		switch p.peek().kind {
		case tokRParen:
			p.pos++
			return args, nil
		case tokComma:
			p.pos++
		default:
			return nil, p.unexpected()
		}
	}
}

// lookupClaimsFunc returns the function called name; names are case-sensitive, as in Traefik Hub.
func lookupClaimsFunc(name string) (claimsFunc, bool) {
	for i, spec := range claimsFuncs {
		if spec.name == name {
			return claimsFunc(i), true
		}
	}
	return 0, false
}

// claimsFuncNames lists the function names for error messages.
func claimsFuncNames() string {
	names := make([]string, len(claimsFuncs))
	for i, spec := range claimsFuncs {
		names[i] = spec.name
	}
	return strings.Join(names, ", ")
}

// newCallExpr checks the arguments of a call to fn and builds it: the arity, the key path and, for
// SplitContains, a non-empty separator.
func newCallExpr(fn claimsFunc, name claimsToken, args []claimsToken) (claimsNode, error) {
	spec := claimsFuncs[fn]
	n := len(args)
	if n < spec.minArgs || (spec.maxArgs >= 0 && n > spec.maxArgs) {
		return nil, fmt.Errorf("offset %d: %s takes %s, got %d", name.off, spec.name, spec.usage, n)
	}
	keys, err := splitClaimPath(args[0].val)
	if err != nil {
		return nil, fmt.Errorf("offset %d: bad key path: %v", args[0].off, err)
	}
	if fn == funcSplitContains && args[1].val == "" {
		return nil, fmt.Errorf("offset %d: SplitContains separator must not be empty", args[1].off)
	}
	vals := make([]string, n-1)
	for i := 1; i < n; i++ {
		vals[i-1] = args[i].val
	}
	member := fn == funcEquals || fn == funcContains || fn == funcOneOf
	return &callExpr{fn: fn, key: args[0].val, keys: keys, args: vals, member: member}, nil
}
