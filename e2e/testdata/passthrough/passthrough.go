// Package passthrough is a Traefik middleware plugin that does nothing but
// call the next handler. It is the "pass-through floor" for benchmarks: the
// cost of running any Yaegi-interpreted plugin in the request path.
package passthrough

import (
	"context"
	"net/http"
)

// Config is the plugin configuration. It has no options.
type Config struct{}

// CreateConfig returns the default plugin configuration.
func CreateConfig() *Config {
	return &Config{}
}

// Passthrough forwards every request unchanged.
type Passthrough struct {
	next http.Handler
	name string
}

// New creates the middleware.
func New(ctx context.Context, next http.Handler, config *Config, name string) (http.Handler, error) {
	return &Passthrough{next: next, name: name}, nil
}

func (p *Passthrough) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	p.next.ServeHTTP(rw, req)
}
