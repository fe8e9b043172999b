//go:build yaegi
// +build yaegi

package oauthintrospection

// interpreted tells a test whether it runs inside the Yaegi harness, where some loops are cut.
// (Yaegi v0.16.1 reads only the "+build" line.)
const interpreted = true
