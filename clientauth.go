package oauthintrospection

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client authentication methods for the introspection endpoint (RFC 7662 section 2.1 requires one;
// the names are those of the OAuth registry, RFC 7591 section 2).
const (
	authSecretBasic   = "client_secret_basic"
	authSecretPost    = "client_secret_post"
	authPrivateKeyJWT = "private_key_jwt"
	authTLSClient     = "tls_client_auth"
	authNone          = "none"
)

const (
	// assertionLifetime is how long a private_key_jwt assertion is valid: one call, with margin
	// for clock skew.
	assertionLifetime = 60 * time.Second
	// maxSecretFileBytes caps clientSecretFile: a secret is one short line.
	maxSecretFileBytes = 4 << 10
	// jwtBearer is the client_assertion_type of RFC 7523 section 2.2.
	jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// clientAuth produces the credentials of one introspection call.
type clientAuth struct {
	method   string
	clientID string
	secret   *secretSource // client_secret_basic and client_secret_post
	key      *keySource    // private_key_jwt
	alg      string        // RS256 or ES256
	audience string        // the aud of assertions: assertionAudience, or the endpoint URL
	keyID    string        // the kid of assertions, or ""
	files    []namedFile   // clientSecretFile and privateKeyFile, when set: they are re-read
	// The parts of every private_key_jwt assertion that never change, made once by
	// compileAssertion: the encoded JWS header, the claims' JSON up to the jti's value, and the
	// form fields before the assertion. A call then writes only the jti and the times.
	jwsHeader     string
	claimsStart   string
	assertionForm string
	// fixedForm and fixedHeader are the credentials of a method whose credentials never change
	// (an inline secret, tls_client_auth, none), computed once.
	fixed       bool
	fixedForm   string
	fixedHeader string
}

// compileClientAuth validates the client authentication options. It returns nil when the
// configuration has no clientId and no authMethod: credentials then come only from
// clientConfig.headers, as in Traefik Hub.
func compileClientAuth(cc ClientConfig) (*clientAuth, error) {
	method := cc.AuthMethod
	if method == "" {
		if cc.ClientID == "" {
			if cc.ClientSecret != "" || cc.ClientSecretFile != "" || cc.PrivateKey != "" || cc.PrivateKeyFile != "" {
				return nil, errors.New("clientConfig.clientId: required when a client secret or key is set")
			}
			return nil, nil
		}
		method = authSecretBasic
	}
	a := &clientAuth{method: method, clientID: cc.ClientID, audience: cc.URL, keyID: cc.KeyID}
	if cc.AssertionAudience != "" {
		a.audience = cc.AssertionAudience
	}
	var err error
	switch method {
	case authSecretBasic, authSecretPost:
		err = a.compileSecret(cc)
	case authPrivateKeyJWT:
		err = a.compileKey(cc)
	case authTLSClient:
		if cc.TLS.Cert == "" || cc.TLS.Key == "" {
			return nil, errors.New("clientConfig.tls.cert: required, with tls.key, by authMethod tls_client_auth")
		}
		err = a.requireClientID()
	case authNone:
	default:
		return nil, fmt.Errorf("clientConfig.authMethod: unknown method; known: %s, %s, %s, %s, %s",
			authSecretBasic, authSecretPost, authPrivateKeyJWT, authTLSClient, authNone)
	}
	if err != nil {
		return nil, err
	}
	if method != authPrivateKeyJWT && len(a.files) == 0 {
		// Nothing changes between calls: compute the credentials once.
		a.fixedForm, a.fixedHeader, _ = credentials(a, time.Time{})
		a.fixed = true
	}
	return a, nil
}

func (a *clientAuth) requireClientID() error {
	if a.clientID == "" {
		return fmt.Errorf("clientConfig.clientId: required by authMethod %s", a.method)
	}
	return nil
}

func (a *clientAuth) compileSecret(cc ClientConfig) error {
	if err := a.requireClientID(); err != nil {
		return err
	}
	switch {
	case cc.ClientSecret != "" && cc.ClientSecretFile != "":
		return errors.New("clientConfig.clientSecret: set clientSecret or clientSecretFile, not both")
	case cc.ClientSecret != "":
		a.secret = &secretSource{value: cc.ClientSecret}
		return nil
	case cc.ClientSecretFile != "":
		s, err := newSecretFile(cc.ClientSecretFile, time.Now())
		if err != nil {
			return fmt.Errorf("clientConfig.clientSecretFile: %w", err)
		}
		a.secret = s
		a.files = append(a.files, namedFile{"clientConfig.clientSecretFile", s.file})
		return nil
	}
	return fmt.Errorf("clientConfig.clientSecret: required by authMethod %s (or set clientSecretFile)", a.method)
}

func (a *clientAuth) compileKey(cc ClientConfig) error {
	if err := a.requireClientID(); err != nil {
		return err
	}
	field, pemText := "clientConfig.privateKey", []byte(cc.PrivateKey)
	var file *watchedFile
	switch {
	case cc.PrivateKey != "" && cc.PrivateKeyFile != "":
		return errors.New("clientConfig.privateKey: set privateKey or privateKeyFile, not both")
	case cc.PrivateKeyFile != "":
		field = "clientConfig.privateKeyFile"
		var err error
		if file, err = openWatched(cc.PrivateKeyFile, maxPEMFileBytes, time.Now()); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		pemText = acceptedContent(file)
		a.files = append(a.files, namedFile{field, file})
	case cc.PrivateKey == "":
		return errors.New("clientConfig.privateKey: required by authMethod private_key_jwt (or set privateKeyFile)")
	}
	signer, err := parsePrivateKey(pemText)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	alg, err := algorithmFor(signer, cc.SigningAlgorithm)
	if err != nil {
		return fmt.Errorf("clientConfig.signingAlgorithm: %w", err)
	}
	a.key = &keySource{file: file, signer: signer}
	a.alg = alg
	a.compileAssertion()
	return nil
}

// compileAssertion makes the fixed parts of the assertions (RFC 7523 section 3): the header with
// alg, typ and kid, and iss, sub and aud, JSON-encoded here so that any client id or audience is
// escaped as json.Marshal escapes it. (Marshalling strings cannot fail.)
func (a *clientAuth) compileAssertion() {
	head := map[string]string{"alg": a.alg, "typ": "JWT"}
	if a.keyID != "" {
		head["kid"] = a.keyID
	}
	header, _ := json.Marshal(head)
	client, _ := json.Marshal(a.clientID)
	audience, _ := json.Marshal(a.audience)
	a.jwsHeader = b64(header)
	a.claimsStart = `{"iss":` + string(client) + `,"sub":` + string(client) + `,"aud":` + string(audience) + `,"jti":"`
	a.assertionForm = "&client_id=" + url.QueryEscape(a.clientID) + "&client_assertion_type=" + url.QueryEscape(jwtBearer) +
		"&client_assertion="
}

// parsePrivateKey reads an RSA or EC private key from PEM (PKCS #8, PKCS #1 or SEC 1). A leading
// EC PARAMETERS block, which openssl ecparam -genkey writes, is skipped. Errors say what is wrong
// in fixed words: the parsers' own errors (asn1: structure error ...) help nobody, and the key's
// content must never reach the log.
func parsePrivateKey(pemText []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(pemText)
	for block != nil && block.Type == "EC PARAMETERS" {
		block, rest = pem.Decode(rest)
	}
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	// RFC 1421 Proc-Type, written by openssl for a key with a passphrase, and PKCS #8 encryption.
	if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, errors.New("encrypted keys are not supported; remove the passphrase (openssl pkey)")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, errors.New("the PEM block is not a private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)")
	}
	if err != nil {
		return nil, errors.New("the key cannot be parsed as its PEM block says")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", key)
}

// algorithmFor checks alg against the key, or derives it from the key when alg is empty.
func algorithmFor(key crypto.Signer, alg string) (string, error) {
	_, isRSA := key.(*rsa.PrivateKey)
	ecKey, isEC := key.(*ecdsa.PrivateKey)
	if alg == "" {
		alg = "RS256"
		if isEC {
			alg = "ES256"
		}
	}
	switch {
	case alg == "RS256" && isRSA:
		return alg, nil
	case alg == "ES256" && isEC && ecKey.Curve == elliptic.P256():
		return alg, nil
	case alg != "RS256" && alg != "ES256":
		return "", errors.New("unsupported algorithm; use RS256 or ES256")
	}
	return "", fmt.Errorf("%s does not match the key (RS256 needs an RSA key, ES256 an EC P-256 key)", alg)
}

// credentials returns what one call adds to the form body (starting with "&") and the value of its
// Authorization header, if any. An assertion is made for each call: its jti must be unique.
func credentials(a *clientAuth, now time.Time) (form, authorization string, err error) {
	if a.fixed {
		return a.fixedForm, a.fixedHeader, nil
	}
	switch a.method {
	case authSecretBasic:
		// RFC 6749 section 2.3.1: id and secret are form-encoded before they are joined, so that a
		// ":" or "%" in either survives.
		pair := url.QueryEscape(a.clientID) + ":" + url.QueryEscape(secretAt(a.secret, now))
		return "", "Basic " + base64.StdEncoding.EncodeToString([]byte(pair)), nil
	case authSecretPost:
		return "&client_id=" + url.QueryEscape(a.clientID) + "&client_secret=" + url.QueryEscape(secretAt(a.secret, now)), "", nil
	case authPrivateKeyJWT:
		assertion, err := signedAssertion(a, now)
		if err != nil {
			return "", "", err
		}
		return a.assertionForm + assertion, "", nil
	}
	// tls_client_auth (RFC 8705 section 2) and none identify the client by client_id alone.
	if a.clientID == "" {
		return "", "", nil
	}
	return "&client_id=" + url.QueryEscape(a.clientID), "", nil
}

// signedAssertion signs a client assertion (RFC 7523 section 3): iss and sub are the client, aud the
// endpoint (or assertionAudience), with a short lifetime and a unique jti. The claims are written
// out after compileAssertion's fixed part: the jti is hex and the times are integers, so nothing
// needs escaping, and a call builds no map and calls no JSON encoder.
func signedAssertion(a *clientAuth, now time.Time) (string, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("making a jti: %w", err)
	}
	claims := a.claimsStart + hex.EncodeToString(nonce) + `","iat":` + strconv.FormatInt(now.Unix(), 10) +
		`,"exp":` + strconv.FormatInt(now.Add(assertionLifetime).Unix(), 10) + "}"
	signingInput := a.jwsHeader + "." + b64([]byte(claims))
	sig, err := signJWS(a, signerAt(a.key, now, a.alg), []byte(signingInput))
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return signingInput + "." + b64(sig), nil
}

// signJWS makes a JWS signature (RFC 7518 section 3): PKCS #1 v1.5 for RS256; for ES256 the raw r||s
// pair of 32 bytes each, not the ASN.1 form crypto/ecdsa returns by default.
func signJWS(a *clientAuth, signer crypto.Signer, input []byte) ([]byte, error) {
	digest := sha256.Sum256(input)
	if a.alg == "RS256" {
		return rsa.SignPKCS1v15(rand.Reader, signer.(*rsa.PrivateKey), crypto.SHA256, digest[:])
	}
	r, s, err := ecdsa.Sign(rand.Reader, signer.(*ecdsa.PrivateKey), digest[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// secretSource holds a client secret, inline or read from a file that is re-read when it changes
// (see watchedFile). Content that is not a valid secret keeps the last good one.
type secretSource struct {
	value string       // an inline secret
	file  *watchedFile // or a file, whose secret is current
	mu    sync.Mutex
	// Guarded by mu.
	current string
}

func newSecretFile(path string, now time.Time) (*secretSource, error) {
	file, err := openWatched(path, maxSecretFileBytes, now)
	if err != nil {
		return nil, err
	}
	secret, err := parseSecret(acceptedContent(file))
	if err != nil {
		return nil, err
	}
	return &secretSource{file: file, current: secret}, nil
}

// secretAt returns the current secret.
func secretAt(s *secretSource, now time.Time) string {
	if s.file == nil {
		return s.value
	}
	if content := pollFile(s.file, now); content != nil {
		if secret, err := parseSecret(content); err != nil {
			failFile(s.file, err.Error())
		} else {
			s.mu.Lock()
			s.current = secret
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// parseSecret reads the format of clientSecretFile: the secret on one line, with one trailing LF
// or CRLF allowed. Anything else is refused rather than guessed at: a byte-order mark, blanks
// around the secret or a second line would otherwise become part of it.
func parseSecret(content []byte) (string, error) {
	text := string(content)
	if strings.HasSuffix(text, "\n") {
		text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
	}
	switch {
	case text == "":
		return "", errors.New("the file holds no secret")
	case strings.HasPrefix(text, "\ufeff"):
		return "", errors.New("the file starts with a byte-order mark; write the secret alone")
	case strings.ContainsAny(text, "\r\n"):
		return "", errors.New("the file has more than one line; write the secret on one line")
	case strings.Trim(text, " \t") != text:
		return "", errors.New("the secret has leading or trailing blanks")
	case !validHeaderValue(text):
		return "", errors.New("the secret has a control character")
	}
	return text, nil
}

// keySource holds the private key of private_key_jwt, inline or read from a file that is re-read
// when it changes. A key that does not parse, or does not fit the algorithm, keeps the last good one.
type keySource struct {
	file *watchedFile // nil for an inline key
	mu   sync.Mutex
	// Guarded by mu.
	signer crypto.Signer
}

// signerAt returns the current key.
func signerAt(k *keySource, now time.Time, alg string) crypto.Signer {
	if k.file != nil {
		if content := pollFile(k.file, now); content != nil {
			reloadKey(k, content, alg)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.signer
}

// reloadKey takes content as the key when it parses and fits alg; otherwise the last good key
// stays and the problem is recorded for the log.
func reloadKey(k *keySource, content []byte, alg string) {
	signer, err := parsePrivateKey(content)
	if err == nil {
		_, err = algorithmFor(signer, alg)
	}
	if err != nil {
		failFile(k.file, err.Error())
		return
	}
	k.mu.Lock()
	k.signer = signer
	k.mu.Unlock()
}
