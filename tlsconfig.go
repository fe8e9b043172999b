package oauthintrospection

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tlsSource is the compiled clientConfig.tls: the PEM of the CA, the certificate and the key, each
// inline or from a file that is re-read when it changes, so that a rotated certificate or CA is
// picked up without a reload.
type tlsSource struct {
	field         string // the option's name, for errors
	insecure      bool
	ca, cert, key pemSource
	// files are those of ca, cert and key that name a file, the ones pollTLS and tlsFileProblems
	// visit on every call: listed once here rather than on each call.
	files []namedFile

	// building is held by whoever rebuilds the configuration, from rebuildTLS until it is
	// installed: two requests that each took one file of a change would otherwise race, and a
	// build from older files could be installed, or recorded as failed, after one from newer files.
	building sync.Mutex

	mu      sync.Mutex
	problem string // guarded by mu: why the files last failed to make a configuration
	// halfway, guarded by mu with halfwayAt and halfwayOf, is a certificate and key that did not
	// match in a build at halfwayAt, of the files' contents whose digests are halfwayOf (in the
	// order of files): perhaps the first half of a pair rotated together, which is logged only if
	// the other half does not follow (failTLS).
	halfway   string
	halfwayAt time.Time
	halfwayOf []fileDigest
	notice    *atomic.Bool // as watchedFile's: raised with every problem, when not nil
}

// pemSource is one PEM option: its content, or the file it names.
type pemSource struct {
	field  string
	inline []byte
	file   *watchedFile
}

// compileTLS compiles a TLS option (field is its name: clientConfig.tls, cache.redis.tls). It
// returns nil when nothing is configured, so the transport keeps Go's defaults.
func compileTLS(field string, t TLSConfig) (*tlsSource, *tls.Config, error) {
	if t.CA == "" && t.Cert == "" && t.Key == "" && !t.InsecureSkipVerify {
		return nil, nil, nil
	}
	if (t.Cert == "") != (t.Key == "") {
		return nil, nil, errors.New(field + ": cert and key must be set together")
	}
	src := &tlsSource{field: field, insecure: t.InsecureSkipVerify}
	var err error
	if src.ca, err = compilePEM(field+".ca", t.CA); err != nil {
		return nil, nil, err
	}
	if src.cert, err = compilePEM(field+".cert", t.Cert); err != nil {
		return nil, nil, err
	}
	if src.key, err = compilePEM(field+".key", t.Key); err != nil {
		return nil, nil, err
	}
	for _, p := range []*pemSource{&src.ca, &src.cert, &src.key} {
		if p.file != nil {
			src.files = append(src.files, namedFile{p.field, p.file})
		}
	}
	conf, err := buildTLS(src)
	if err != nil {
		return nil, nil, err
	}
	return src, conf, nil
}

// endpointTrust names how t verifies the server: not at all, by its CA (inline, by content; a
// file, by its path, which names the CA across rotations), or by the system's roots.
func endpointTrust(t *tlsSource) string {
	switch {
	case t == nil:
		return "roots"
	case t.insecure:
		return "unverified"
	case t.ca.file != nil:
		return "ca-file " + strconv.Quote(t.ca.file.path)
	case t.ca.inline != nil:
		sum := sha256.Sum256(t.ca.inline)
		return "ca " + hex.EncodeToString(sum[:])
	}
	return "roots"
}

// compilePEM takes v as PEM content when it holds a PEM block, and otherwise as the path of a PEM
// file. The error never quotes v: a key put where a path belongs must not reach the log.
func compilePEM(field, v string) (pemSource, error) {
	p := pemSource{field: field}
	switch {
	case v == "":
	case strings.Contains(v, "-----BEGIN "):
		p.inline = []byte(v)
	default:
		file, err := openWatched(v, maxPEMFileBytes, time.Now())
		if err != nil {
			return p, fmt.Errorf("%s: neither PEM content nor a readable file: %w", field, err)
		}
		p.file = file
	}
	return p, nil
}

// pemContent returns the PEM of p: inline, or the file's accepted content.
func pemContent(p *pemSource) []byte {
	if p.file != nil {
		return acceptedContent(p.file)
	}
	return p.inline
}

// buildTLS makes the TLS configuration from the current PEM contents.
func buildTLS(t *tlsSource) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.insecure}
	if ca := pemContent(&t.ca); ca != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New(t.field + ".ca: no PEM certificate found")
		}
		conf.RootCAs = pool
	}
	if cert := pemContent(&t.cert); cert != nil {
		pair, err := tls.X509KeyPair(cert, pemContent(&t.key))
		if err != nil {
			return nil, errors.New(t.field + ": cert and key: " + keyPairProblem(err))
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// rebuildTLS makes the configuration of the files once pollTLS took a change, with t.building
// held. When they make none, it returns nil and records why (failTLS), and the transport keeps
// the configuration it has.
func rebuildTLS(t *tlsSource, now time.Time) *tls.Config {
	// The digests are taken before the build: a change taken meanwhile makes them differ from
	// the files', so a mismatch found is not taken for the files' own until a build has seen it.
	var before []fileDigest
	for _, f := range t.files {
		before = append(before, acceptedDigest(f.file))
	}
	conf, err := buildTLS(t)
	if err != nil {
		failTLS(t, err.Error(), now, before)
		return nil
	}
	t.mu.Lock()
	t.halfway = "" // the other half came
	t.mu.Unlock()
	return conf
}

// pollTLS reads the TLS files again when their time has come, and reports whether one changed.
func pollTLS(t *tlsSource, now time.Time) bool {
	changed := false
	for _, f := range t.files {
		if pollFile(f.file, now) != nil {
			changed = true
		}
	}
	return changed
}

// tls.X509KeyPair's own words for a certificate and a key of different pairs: of one key type, and
// of two (a pair rotated from RSA to ECDSA, say).
const (
	pairMismatch     = "private key does not match public key"
	pairTypeMismatch = "private key type does not match public key type"
)

// keyPairProblem names why tls.X509KeyPair refused a certificate and key, in its own fixed words;
// anything else is summed up, since an error could quote what it parsed.
func keyPairProblem(err error) string {
	msg := err.Error()
	for _, known := range []string{
		pairMismatch,
		pairTypeMismatch,
		"failed to find any PEM data in certificate input",
		"failed to find any PEM data in key input",
		"failed to find certificate PEM data in certificate input",
		"failed to find PEM block with type ending in \"PRIVATE KEY\" in key input",
		"unknown private key type",
	} {
		if strings.Contains(msg, known) {
			return known
		}
	}
	return "they cannot be parsed"
}
