package devissuer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/taskfn/taskfn/shared/httpx"
)

// Paths under the issuer URL, the same as Keycloak's so clients need no
// special case for development.
const (
	discoveryPath = "/.well-known/openid-configuration"
	certsPath     = "/protocol/openid-connect/certs"
	tokenPath     = "/protocol/openid-connect/token"
)

// Issuer issues RS256 access tokens for one realm.
type Issuer struct {
	url   string
	base  string // the issuer URL's path, where ServeHTTP's routes hang
	realm *Realm
	now   func() time.Time

	mu        sync.RWMutex
	signer    jose.Signer
	published []jose.JSONWebKey // every key ever used, newest first, as Keycloak keeps passive keys
}

// New returns an issuer for realm whose tokens carry iss = issuerURL, signing
// with a freshly generated RSA-2048 key.
func New(issuerURL string, realm *Realm) (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devissuer: generating key: %w", err)
	}
	return NewWithKey(issuerURL, realm, key)
}

// NewWithKey is New with a given signing key, for tests that cannot afford a
// key generation per issuer.
func NewWithKey(issuerURL string, realm *Realm, key *rsa.PrivateKey) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("devissuer: issuer URL %q must be an absolute http(s) URL", issuerURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
		return nil, fmt.Errorf("devissuer: issuer URL %q must not end in a slash or carry a query", issuerURL)
	}
	if realm == nil {
		return nil, errors.New("devissuer: realm is nil")
	}
	if err := realm.Validate(); err != nil {
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	iss := &Issuer{url: issuerURL, base: u.Path, realm: realm, now: time.Now}
	if err := iss.RotateKey(key); err != nil {
		return nil, err
	}
	return iss, nil
}

// URL is the issuer URL, the "iss" of every token.
func (iss *Issuer) URL() string { return iss.url }

// RotateKey makes key the signing key. The previous keys stay in the JWKS, as
// Keycloak keeps rotated keys passive, so tokens already issued still verify.
// A nil key means a freshly generated one.
func (iss *Issuer) RotateKey(key *rsa.PrivateKey) error {
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return fmt.Errorf("devissuer: generating key: %w", err)
		}
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("devissuer: key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return fmt.Errorf("devissuer: signer: %w", err)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.signer = signer
	iss.published = append([]jose.JSONWebKey{pub}, iss.published...)
	return nil
}

// Sign signs claims as they are with the current key: tests use it to mint
// tokens Keycloak would never issue.
func (iss *Issuer) Sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devissuer: claims: %w", err)
	}
	iss.mu.RLock()
	signer := iss.signer
	iss.mu.RUnlock()
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("devissuer: signing: %w", err)
	}
	return jws.CompactSerialize()
}

// ServeHTTP answers discovery, JWKS and token requests under the issuer
// URL's path; mount it at the server root.
func (iss *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, iss.base)
	if !ok {
		httpx.WriteProblem(w, r, httpx.NotFound())
		return
	}
	switch rest {
	case discoveryPath:
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		writeJSON(w, http.StatusOK, iss.discovery())
	case certsPath:
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		iss.mu.RLock()
		set := jose.JSONWebKeySet{Keys: iss.published}
		iss.mu.RUnlock()
		writeJSON(w, http.StatusOK, set)
	case tokenPath:
		if !allow(w, r, http.MethodPost) {
			return
		}
		iss.token(w, r)
	default:
		httpx.WriteProblem(w, r, httpx.NotFound())
	}
}

// discovery is the subset of Keycloak's metadata that this issuer backs
// with an endpoint.
func (iss *Issuer) discovery() map[string]any {
	return map[string]any{
		"issuer":                                iss.url,
		"token_endpoint":                        iss.url + tokenPath,
		"jwks_uri":                              iss.url + certsPath,
		"grant_types_supported":                 []string{"password", "client_credentials"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.RS256)},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "profile", "email", "roles"},
		"claims_supported": []string{
			"iss", "sub", "aud", "exp", "iat", "azp", "typ",
			"preferred_username", "email", "email_verified", "name", "given_name", "family_name",
		},
	}
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	p := httpx.NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
		"this endpoint accepts "+strings.Join(methods, ", "))
	p.Header = http.Header{"Allow": {strings.Join(methods, ", ")}}
	httpx.WriteProblem(w, r, p)
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
