package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// serveTLS wraps ln in TLS with a new self-signed certificate for 127.0.0.1, written to
// dir/ca.pem so that the plugin can trust it through clientConfig.tls.ca.
func serveTLS(ln net.Listener, dir string) (net.Listener, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fastidp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), certPEM, 0o600); err != nil {
		return nil, err
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// clientCheck returns what every introspection call must pass: Basic credentials equal to basic
// when it is set, and when keyFile is set an ES256 client assertion (RFC 7523) signed with a new
// key that it writes there. The check returns why a call fails, or "".
func clientCheck(basic, keyFile string) (func(*http.Request) string, error) {
	var pub *ecdsa.PublicKey
	if keyFile != "" {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		pub = &key.PublicKey
	}
	id, secret, _ := strings.Cut(basic, ":")
	return func(r *http.Request) string {
		if basic != "" {
			// RFC 6749 section 2.3.1: the client form-encodes the id and the secret before it joins them.
			u, p, ok := r.BasicAuth()
			u, errU := url.QueryUnescape(u)
			p, errP := url.QueryUnescape(p)
			if !ok || errU != nil || errP != nil || u != id || p != secret {
				return "wrong or missing Basic credentials"
			}
		}
		if pub != nil {
			if err := checkAssertion(r, pub); err != nil {
				return err.Error()
			}
		}
		return ""
	}, nil
}

// checkAssertion verifies the call's client assertion: its type, its ES256 signature by pub, and
// that it has not expired. The plugin's claims themselves are checked by its tests against
// node-oidc-provider; here the point is that the row pays for a real signature.
func checkAssertion(r *http.Request, pub *ecdsa.PublicKey) error {
	if r.PostFormValue("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return errors.New("no client_assertion_type")
	}
	parts := strings.Split(r.PostFormValue("client_assertion"), ".")
	if len(parts) != 3 {
		return errors.New("client_assertion is not a JWS")
	}
	var header struct{ Alg string }
	var claims struct{ Exp int64 }
	if err := decodePart(parts[0], &header); err != nil || header.Alg != "ES256" {
		return errors.New("client_assertion is not ES256")
	}
	if err := decodePart(parts[1], &claims); err != nil || claims.Exp <= time.Now().Unix() {
		return errors.New("client_assertion expired or unreadable")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errors.New("client_assertion signature unreadable")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("client_assertion signature does not verify")
	}
	return nil
}

// decodePart decodes one base64url part of a JWS into v.
func decodePart(part string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
