package oauthintrospection

// This file holds the code that exists because Traefik runs the plugin in Yaegi v0.16.1, and the
// reason for each piece. Other workarounds are too small to move (a func literal with named
// parameters, a value copied out of a loop); each says why where it stands.

import "reflect"

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
