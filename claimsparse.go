package oauthintrospection

// The lexer and the parser of the claims language (see claims.go). The parser is recursive descent,
// after go/build/constraint: or -> and -> not -> atom, where an atom is a parenthesized expression or
// a function call. Every error carries the byte offset where it was found; a string or a name is
// never quoted in an error, since it may be configuration data, while operators are.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

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
func parseClaims(s string) (*claimsProgram, error) {
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

// parseOr parses operands joined by ||, parseAnd operands joined by &&. || binds loosest, so an
// operand of parseOr is an && chain, and an operand of parseAnd a ! or an atom.
func (p *claimsParser) parseOr() (claimsNode, error) {
	return p.parseChain(tokOr)
}

func (p *claimsParser) parseAnd() (claimsNode, error) {
	return p.parseChain(tokAnd)
}

// parseChain parses operands joined by op (tokOr or tokAnd). An operand that is itself a chain of
// op, written in parentheses, is flattened into this one: a || (b || c) is a || b || c.
func (p *claimsParser) parseChain(op claimsTokenKind) (claimsNode, error) {
	var list []claimsNode
	for {
		var x claimsNode
		var err error
		if op == tokOr {
			x, err = p.parseAnd()
		} else {
			x, err = p.parseNot()
		}
		if err != nil {
			return nil, err
		}
		list = appendOperand(list, x, op)
		if p.peek().kind != op {
			break
		}
		p.pos++
	}
	if len(list) == 1 {
		return list[0], nil
	}
	if op == tokOr {
		return &orExpr{anyOf: list}, nil
	}
	return &andExpr{allOf: list}, nil
}

// appendOperand appends x to the operands of an op chain, or x's own operands when x is a chain of
// the same op.
func appendOperand(list []claimsNode, x claimsNode, op claimsTokenKind) []claimsNode {
	if or, ok := x.(*orExpr); ok && op == tokOr {
		return append(list, or.anyOf...)
	}
	if and, ok := x.(*andExpr); ok && op == tokAnd {
		return append(list, and.allOf...)
	}
	return append(list, x)
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
		// An empty call: every function takes a key at least, so newCallExpr refuses it and the
		// parse ends there, with the ")" left unread.
		return nil, nil
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
