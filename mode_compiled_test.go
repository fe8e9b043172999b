//go:build !yaegi

package oauthintrospection

// interpreted tells a test whether it runs inside the Yaegi harness, where some loops are cut.
const interpreted = false
