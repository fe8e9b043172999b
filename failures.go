package oauthintrospection

import (
	"context"
	"errors"
	"io"
	"strings"
)

// This file names failures for the log: of the IdP (idpclient.go), of Redis (sharedcache.go) and of
// the IdP's revocation endpoint (revocation.go).

// transportFailure names the kind of a transport error. The error's own text is never logged: Go
// quotes in it what the endpoint sent (a malformed status line or header) and the names of its
// certificate, line breaks and escape codes included, so any peer that answers on the endpoint's
// address could write into the log.
func transportFailure(ctx context.Context, err error) string {
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return "timed out"
	case ctx.Err() != nil:
		// The call outlives its request (resolveMiss), so only the circuit breaker cancels it.
		return "cut off: the circuit breaker opened"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the endpoint"
	}
	// The remaining kinds are told apart by fixed phrases of the standard library's messages: the
	// interpreter has no syscall package to compare errnos with (docs/development.md).
	msg := err.Error()
	for _, k := range transportKinds {
		if strings.Contains(msg, k.phrase) {
			return k.kind
		}
	}
	return "transport error"
}

// transportKinds maps phrases of net, net/http, crypto/tls and crypto/x509 errors to the kind
// logged, most specific first.
var transportKinds = []struct{ phrase, kind string }{
	{"certificate is valid for", "TLS: the certificate does not match the host"},
	{"x509: certificate signed by unknown authority", "TLS: the certificate is not trusted"},
	{"x509: certificate has expired", "TLS: the certificate has expired or is not yet valid"},
	{"x509: ", "TLS: the certificate was refused"},
	{"tls: ", "TLS: the handshake failed"},
	{"server gave HTTP response to HTTPS client", "TLS: the endpoint answered in plain HTTP"},
	{"connection refused", "connection refused"},
	{"connection reset", "connection reset"},
	{"timeout", "timed out"},
	{"no such host", "host not found"},
	{"network is unreachable", "network unreachable"},
	{"malformed", "protocol error: malformed response"},
	{"net/http: ", "protocol error"},
}

// redisErrorCategory names a Redis failure without its text, which may hold what the peer sent.
func redisErrorCategory(err error) string {
	if isRedisReplyError(err) {
		return "the server refused a command"
	}
	if err == errRedisBusy {
		return "every connection stayed busy"
	}
	return transportFailure(context.Background(), err)
}
