package oauthintrospection

// This file holds the code that exists because Traefik runs the plugin in Yaegi v0.16.1, and the
// reason for each piece. The smaller workarounds stay where they are needed, each with its reason;
// docs/development.md lists them all with the interpreter's measured costs:
//
//   - orExpr and andExpr have different field names (claims.go): same-shaped structs are one type;
//   - the claims expression runs as a flat step list, not a tree walk (claims.go): calls are dear;
//   - fastHit is one function that inlines its checks (fastpath.go), for the same reason;
//   - below ServeHTTP, what runs on a request is plain functions, not methods: a method call
//     costs several plain calls, and the first two calls of one method made at once race
//     inside Yaegi;
//   - CheckRedirect is a func literal with named parameters, and the transport has no custom
//     dialer (idpclient.go): the interpreter mis-assigns or refuses the other forms;
//   - errno kinds are matched by their text (idpclient.go, files.go): there is no syscall package;
//   - comparisons are assigned to locals before they are combined: a combined comparison of two
//     call results can panic or give false;
//   - the request path names the constants below, not the standard library's.

import (
	"math"
	"net/http"
	"reflect"
)

// The standard library's constants that the request path uses, as constants of this package:
// Yaegi gives a standard-library constant a frame slot, one allocation, in every call of a
// function that names it, and a constant of the package's own none (measured with an
// instrumented Yaegi; docs/performance.md).
const (
	statusOK           = http.StatusOK
	statusUnauthorized = http.StatusUnauthorized
	statusForbidden    = http.StatusForbidden
	statusUnavailable  = http.StatusServiceUnavailable
	methodPost         = http.MethodPost
	// noExp and noNbf are a verdict's bounds when the answer has no exp or no nbf.
	noExp = math.MaxInt64
	noNbf = math.MinInt64
)

// firstReady blocks until channel a or b can receive and reports whether it was a. It stands in for
// a select statement: Yaegi v0.16.1 keeps one case list per select statement and shares it between
// goroutines, so two requests in the same select race and may wait on each other's channels
// (go test -race on the Yaegi harness shows it). reflect.Select gets a fresh list on every call.
func firstReady(a, b any) bool {
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(a)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(b)},
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen == 0
}
