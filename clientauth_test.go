package oauthintrospection

// This file uses the standard library only: the Yaegi harness runs it interpreted too.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// introspectOnce builds a middleware from cfg and sends one request with a token of its own.
func introspectOnce(t *testing.T, cfg *Config, token string) int {
	t.Helper()
	cfg.Cache.TTLSeconds = 0
	rec, _ := serveOne(t, cfg, token)
	return rec.Code
}

func TestClientSecretBasic(t *testing.T) {
	idp := activeIDP(t)
	cfg := bearerConfig(idp.srv.URL)
	cfg.ClientConfig.ClientID = "gate way"
	cfg.ClientConfig.ClientSecret = "p:a%ss+w/rd"
	cfg.ClientConfig.Headers = map[string]string{"Authorization": "Basic c3RhdGljOnN0YXRpYw=="}
	if code := introspectOnce(t, cfg, "t"); code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}
	form, auth := idp.lastCall(t)
	// RFC 6749 section 2.3.1: both parts form-encoded, then joined and base64-encoded. The
	// configured method wins over a static Authorization header.
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("gate+way:p%3Aa%25ss%2Bw%2Frd"))
	expectEqual(t, "Authorization", auth, want)
	expectEqual(t, "token", form.Get("token"), "t")
	if form.Has("client_secret") || form.Has("client_assertion") {
		t.Errorf("credentials leaked into the form: %v", form)
	}
}

func TestClientSecretPost(t *testing.T) {
	idp := activeIDP(t)
	cfg := bearerConfig(idp.srv.URL)
	cfg.ClientConfig.ClientID = "gateway"
	cfg.ClientConfig.ClientSecret = "s3cr&t=1"
	cfg.ClientConfig.AuthMethod = "client_secret_post"
	if code := introspectOnce(t, cfg, "t"); code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}
	form, auth := idp.lastCall(t)
	expectEqual(t, "client_id", form.Get("client_id"), "gateway")
	expectEqual(t, "client_secret", form.Get("client_secret"), "s3cr&t=1")
	expectEqual(t, "Authorization", auth, "")
}

// TestPrivateKeyJWT checks the client assertion of RFC 7523 and verifies its signature with the
// public key, for RS256 and ES256.
func TestPrivateKeyJWT(t *testing.T) {
	rsaPEM, rsaKey := rsaKeyPEM(t)
	ecPEM, ecKey := ecKeyPEM(t)
	verifyRSA := func(digest, sig []byte) bool {
		return rsa.VerifyPKCS1v15(&rsaKey.PublicKey, crypto.SHA256, digest, sig) == nil
	}
	testCases := []struct {
		desc     string
		pem      string
		alg      string
		audience string // assertionAudience; "" means the endpoint URL
		kid      string
		clientID string // "" means rs-jwt
		verify   func(digest, sig []byte) bool
	}{
		{desc: "RS256", pem: rsaPEM, alg: "RS256", verify: verifyRSA},
		{desc: "RS256 with the issuer as audience and a kid", pem: rsaPEM, alg: "RS256", audience: "https://idp.example/realms/r", kid: "key-1", verify: verifyRSA},
		{desc: "ES256", pem: ecPEM, alg: "ES256", verify: func(digest, sig []byte) bool {
			if len(sig) != 64 {
				return false
			}
			r := new(big.Int).SetBytes(sig[:32])
			s := new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(&ecKey.PublicKey, digest, r, s)
		}},
		// The fixed parts of the assertion are encoded once, in New: a client id, an audience and a
		// kid that JSON must escape come out as configured.
		{desc: "RS256 with a client id, audience and kid that need escaping", pem: rsaPEM, alg: "RS256",
			clientID: `rs "jwt" \ <&> é`, audience: `https://idp.example/r?a="b"&c=<d>`, kid: `k"1\`, verify: verifyRSA},
	}
	for _, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			idp := activeIDP(t)
			cfg := bearerConfig(idp.srv.URL + "/introspect")
			clientID := test.clientID
			if clientID == "" {
				clientID = "rs-jwt"
			}
			cfg.ClientConfig.ClientID = clientID
			cfg.ClientConfig.AuthMethod = "private_key_jwt"
			keyFile := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(keyFile, []byte(test.pem), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.ClientConfig.PrivateKeyFile = keyFile
			cfg.ClientConfig.AssertionAudience = test.audience
			cfg.ClientConfig.KeyID = test.kid
			wantAudience := test.audience
			if wantAudience == "" {
				wantAudience = idp.srv.URL + "/introspect"
			}
			jtis := map[string]bool{}
			for i := 0; i < 2; i++ {
				if code := introspectOnce(t, cfg, "t"); code != http.StatusOK {
					t.Fatalf("status = %d", code)
				}
				form, auth := idp.lastCall(t)
				expectEqual(t, "Authorization", auth, "")
				expectEqual(t, "client_assertion_type", form.Get("client_assertion_type"), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				expectEqual(t, "client_id", form.Get("client_id"), clientID)
				header, claims := checkAssertion(t, form.Get("client_assertion"), test.alg, test.verify)
				wantHeader := "alg typ"
				if test.kid != "" {
					wantHeader = "alg kid typ"
				}
				expectEqual(t, "header members", keysOf(header), wantHeader)
				expectEqual(t, "claims", keysOf(claims), "aud exp iat iss jti sub")
				kid, _ := header["kid"].(string)
				expectEqual(t, "kid", kid, test.kid)
				expectEqual(t, "typ", header["typ"].(string), "JWT")
				expectEqual(t, "iss", claims["iss"].(string), clientID)
				expectEqual(t, "sub", claims["sub"].(string), clientID)
				expectEqual(t, "aud", claims["aud"].(string), wantAudience)
				exp := int64(claims["exp"].(float64))
				iat := int64(claims["iat"].(float64))
				if now := time.Now().Unix(); exp <= now || exp > now+120 || iat > now || iat < now-60 || exp-iat != 60 {
					t.Errorf("iat %d s and exp %d s from now, want now and a 60 s lifetime", iat-now, exp-now)
				}
				jti, _ := claims["jti"].(string)
				if jti == "" || jtis[jti] {
					t.Errorf("jti %q is empty or reused", jti)
				}
				jtis[jti] = true
			}
		})
	}
}

// keysOf returns the names of m's members, sorted and joined by spaces.
func keysOf(m map[string]any) string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// checkAssertion verifies a compact JWS and returns its header and claims.
func checkAssertion(t *testing.T, jws, alg string, verify func(digest, sig []byte) bool) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion has %d parts", len(parts))
	}
	var header, claims map[string]any
	for i, into := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	expectEqual(t, "alg", header["alg"].(string), alg)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !verify(digest[:], sig) {
		t.Errorf("the signature does not verify with the public key")
	}
	return header, claims
}

func TestTLSClientAuthAndNone(t *testing.T) {
	certPEM, keyPEM, cert := selfSigned(t, "gateway")
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	idp := newTLSFakeIDP(t, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, answerJSON(`{"active":true}`))
	cfg := bearerConfig(idp.srv.URL)
	cfg.ClientConfig.ClientID = "gateway"
	cfg.ClientConfig.AuthMethod = "tls_client_auth"
	cfg.ClientConfig.TLS = TLSConfig{InsecureSkipVerify: true, Cert: certPEM, Key: keyPEM}
	if code := introspectOnce(t, cfg, "t"); code != http.StatusOK {
		t.Fatalf("tls_client_auth: status = %d", code)
	}
	form, auth := idp.lastCall(t)
	expectEqual(t, "client_id", form.Get("client_id"), "gateway")
	expectEqual(t, "Authorization", auth, "")

	plain := activeIDP(t)
	cfg = bearerConfig(plain.srv.URL)
	cfg.ClientConfig.AuthMethod = "none"
	if code := introspectOnce(t, cfg, "t"); code != http.StatusOK {
		t.Fatalf("none: status = %d", code)
	}
	form, auth = plain.lastCall(t)
	expectEqual(t, "Authorization", auth, "")
	if len(form) != 1 {
		t.Errorf("none sends only the token, got %v", form)
	}
}

// TestClientSecretFileIsReread rewrites the secret file in the ways operators do and checks that the
// next calls use the new secret: in place with another length, in place with the same length and
// the modification time kept (cp -p, rsync, tar), and by an atomic rename. A file that vanishes
// keeps the last secret.
func TestClientSecretFileIsReread(t *testing.T) {
	testCases := []struct {
		desc    string
		rewrite func(t *testing.T, path, content string)
		polls   int // the checks until the change is taken: every change is confirmed once
	}{
		{desc: "in place", rewrite: writeInPlace, polls: 2},
		{desc: "in place, same length, mtime kept", rewrite: writeKeepingMtime, polls: 2},
		{desc: "atomic rename", rewrite: writeByRename, polls: 2},
	}
	for i, test := range testCases {
		t.Run(test.desc, func(t *testing.T) {
			idp := activeIDP(t)
			file := filepath.Join(t.TempDir(), "secret")
			writeInPlace(t, file, "first-secret\n")
			cfg := bearerConfig(idp.srv.URL)
			cfg.ClientConfig.ClientID = "gw"
			cfg.ClientConfig.ClientSecretFile = file
			cfg.ClientConfig.AuthMethod = "client_secret_post"
			cfg.Cache.TTLSeconds = 0
			h, err := New(context.Background(), &upstream{}, cfg, fmt.Sprintf("secretfile-%d@test", i))
			if err != nil {
				t.Fatal(err)
			}
			secretOf := func() string {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.Header.Set("Authorization", "Bearer t")
				h.ServeHTTP(httptest.NewRecorder(), req)
				form, _ := idp.lastCall(t)
				return form.Get("client_secret")
			}
			w := h.(*middleware).idp.auth.secret.file
			expectEqual(t, "first secret", secretOf(), "first-secret")
			test.rewrite(t, file, "other-secret\n") // the same length
			for n := 1; n < test.polls; n++ {
				checkNow(w)
				expectEqual(t, "secret before the change is confirmed", secretOf(), "first-secret")
			}
			checkNow(w)
			expectEqual(t, "re-read secret", secretOf(), "other-secret")
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			checkNow(w)
			expectEqual(t, "secret after the file vanished", secretOf(), "other-secret")
		})
	}
}

// checkNow makes the next use of w read the file again instead of waiting for fileRecheck.
func checkNow(w *watchedFile) {
	w.mu.Lock()
	w.nextCheck = time.Time{}
	w.mu.Unlock()
}

// TestSecretsNeverLogged drives a refused client secret and checks that the log names the cause
// (invalid_client) without the secret.
func TestSecretsNeverLogged(t *testing.T) {
	const secret = "S3CRET-marker-value"
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"client authentication failed for ` + secret + `"}`))
	}))
	defer idp.Close()
	cfg := bearerConfig(idp.URL)
	cfg.ClientConfig.ClientID = "gw"
	cfg.ClientConfig.ClientSecret = secret
	h, err := New(context.Background(), &upstream{}, cfg, "secretlog@test")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs strings.Builder
	h.(*middleware).logf = func(level, msg string) {
		mu.Lock()
		logs.WriteString(level + ": " + msg + "\n")
		mu.Unlock()
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer tok-marker")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a refused client secret: status = %d, want 503", rec.Code)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "endpoint answered 401 (invalid_client)") {
		t.Errorf("the log does not name the cause:\n%s", out)
	}
	for _, leak := range []string{secret, "tok-marker", base64.StdEncoding.EncodeToString([]byte("gw:" + secret))} {
		if strings.Contains(out, leak) || strings.Contains(rec.Body.String(), leak) {
			t.Errorf("%q leaked:\nlog: %s\nbody: %s", leak, out, rec.Body.String())
		}
	}
}
