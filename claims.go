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
	"strconv"
	"strings"
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
// costs microseconds and allocations, a method call through an interface most of all
// (docs/development.md, interpreter costs), so walking the tree with an eval method per node took
// three to five times as long as this loop, which calls only plain functions, and only for the function calls
// of the expression that it must evaluate.
type claimsProgram struct {
	root  claimsNode
	steps []claimsStep
	// single is the program's one call when it is nothing else, as most expressions are
	// (Equals(`grp`, `admin`)): evalClaims then runs no step loop.
	single *callExpr
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
	p := &claimsProgram{root: root, steps: compileClaims(root, nil)}
	if len(p.steps) == 1 && p.steps[0].op == stepCall {
		p.single = p.steps[0].call
	}
	return p
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

// evalClaims runs p on claims. It only reads the program and the claims, so one program serves
// concurrent requests.
func evalClaims(p *claimsProgram, claims map[string]any) bool {
	if p.single != nil {
		return evalCall(p.single, claims)
	}
	return runSteps(p.steps, claims)
}

// runSteps runs a program's steps. (Apart from evalClaims so that a one-call program pays for
// none of the loop's frame slots.)
func runSteps(steps []claimsStep, claims map[string]any) bool {
	reg := false
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
// for any element (evalArray).
func evalCall(c *callExpr, claims map[string]any) bool {
	// lookupClaim, written out for the usual top-level claim: a call costs more than this.
	var v any
	var ok bool
	if len(c.keys) == 1 {
		v, ok = claims[c.keys[0]]
	} else {
		v, ok = lookupNested(claims, c.keys)
	}
	if !ok {
		return false
	}
	if arr, isArr := v.([]any); isArr {
		return evalArray(c, arr)
	}
	if s, isStr := v.(string); isStr && c.fn == funcEquals {
		// matchClaim's commonest case, without its call.
		return s == c.args[0]
	}
	return matchClaim(c, v, false)
}

// evalArray is evalCall on an array claim: it holds when it holds for any element. (Apart so that
// a scalar claim pays for none of the loop's frame slots.)
func evalArray(c *callExpr, arr []any) bool {
	for _, el := range arr {
		s, isStr := el.(string)
		if !isStr || !c.member {
			if matchClaim(c, el, true) {
				return true
			}
			continue
		}
		// Inline rather than a call per element (docs/development.md, interpreter costs).
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
