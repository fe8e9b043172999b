package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The rows of bench/run.sh that price client authentication count only 2xx answers as a pass, so
// fastidp must refuse what a real IdP would: these cases keep its checks from passing anything.
func TestClientCheck(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "jwt.pem")
	check, err := clientCheck("rs:s3cr:t+%", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := readKey(t, keyFile)
	other, err := ecdsa.GenerateKey(key.Curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute).Unix()
	good := assertion(t, key, "ES256", future)
	tampered := good[:len(good)-4] + "AAAA"
	if tampered == good {
		tampered = good[:len(good)-4] + "BBBB"
	}
	cases := []struct {
		name       string
		user, pass string
		form       url.Values
		ok         bool
	}{
		{"basic and assertion", "rs", "s3cr%3At%2B%25", withAssertion(good), true},
		{"no basic", "", "", withAssertion(good), false},
		{"wrong secret", "rs", "nope", withAssertion(good), false},
		{"secret not form-encoded", "rs", "s3cr:t+%", withAssertion(good), false},
		{"no assertion", "rs", "s3cr%3At%2B%25", url.Values{"token": {"t"}}, false},
		{"another key", "rs", "s3cr%3At%2B%25", withAssertion(assertion(t, other, "ES256", future)), false},
		{"expired", "rs", "s3cr%3At%2B%25", withAssertion(assertion(t, key, "ES256", time.Now().Unix()-1)), false},
		{"another alg", "rs", "s3cr%3At%2B%25", withAssertion(assertion(t, key, "RS256", future)), false},
		{"tampered signature", "rs", "s3cr%3At%2B%25", withAssertion(tampered), false},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		if reason := check(req); (reason == "") != c.ok {
			t.Errorf("%s: reason %q, want accepted=%v", c.name, reason, c.ok)
		}
	}
}

func withAssertion(jws string) url.Values {
	return url.Values{"token": {"t"}, "client_assertion": {jws},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
}

func readKey(t *testing.T, file string) *ecdsa.PrivateKey {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatal("no PEM block in " + file)
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// assertion signs a minimal JWS with key, whatever alg its header names.
func assertion(t *testing.T, key *ecdsa.PrivateKey, alg string, exp int64) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"`+alg+`"}`)) + "." +
		enc.EncodeToString([]byte(`{"iss":"rs","exp":`+strconv.FormatInt(exp, 10)+`}`))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}
