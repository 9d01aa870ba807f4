// Package authtest runs a Keycloak-shaped issuer over real HTTP for tests, so
// handler tests send the same RS256 tokens a client gets from Keycloak and go
// through the real auth.Verifier.
package authtest

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/devissuer"
)

// Audience is the API client every token is issued for.
const Audience = "taskfn-api"

// Client is the client (azp) tokens are issued to.
const Client = "taskfn-cli"

// realmPath is where the issuer lives on its server, as on Keycloak.
const realmPath = "/realms/taskfn"

// sharedKey is generated once per test binary: RSA key generation costs far
// more than a whole handler test, and the tests that need a second key make
// their own.
var sharedKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

// Issuer is a running development issuer with a throwaway realm.
type Issuer struct {
	iss  *devissuer.Issuer
	srv  *httptest.Server
	down atomic.Bool
	jwks atomic.Int64
}

// NewIssuer starts an issuer on a loopback port and stops it when the test
// ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	key, err := sharedKey()
	if err != nil {
		t.Fatalf("authtest: generating key: %v", err)
	}
	i := &Issuer{}
	i.srv = httptest.NewServer(http.HandlerFunc(i.serve))
	t.Cleanup(i.srv.Close)
	realm := &devissuer.Realm{Realm: "taskfn", Enabled: true, AccessTokenLifespan: 300}
	realm.Clients = []devissuer.Client{
		{ClientID: Audience, Secret: "test-secret", ServiceAccountsEnabled: true},
		{ClientID: Client, PublicClient: true, DirectAccessGrantsEnabled: true, ProtocolMappers: []devissuer.ProtocolMapper{{
			Name: "audience", Protocol: "openid-connect", ProtocolMapper: "oidc-audience-mapper",
			Config: map[string]string{"included.client.audience": Audience, "access.token.claim": "true"},
		}}},
	}
	if i.iss, err = devissuer.NewWithKey(i.srv.URL+realmPath, realm, key); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return i
}

func (i *Issuer) serve(w http.ResponseWriter, r *http.Request) {
	if i.down.Load() {
		http.Error(w, "issuer down (authtest)", http.StatusServiceUnavailable)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/protocol/openid-connect/certs") {
		i.jwks.Add(1)
	}
	i.iss.ServeHTTP(w, r)
}

// URL is the issuer URL, the "iss" of its tokens.
func (i *Issuer) URL() string { return i.iss.URL() }

// Config is an auth.Config that trusts this issuer. JWKSMinRefresh is short
// so key rotation shows within a test.
func (i *Issuer) Config() auth.Config {
	return auth.Config{
		Issuer:         i.URL(),
		Audience:       Audience,
		ClockSkew:      30 * time.Second,
		SigningAlgs:    []string{"RS256"},
		TokenCacheSize: 1000,
		JWKSMinRefresh: 50 * time.Millisecond,
	}
}

// Claims are the claims of a Keycloak access token for subject holding roles
// as realm roles; tests change one and Sign the result.
func (i *Issuer) Claims(subject string, roles ...auth.Role) map[string]any {
	now := time.Now().Unix()
	rs := make([]string, len(roles))
	for n, r := range roles {
		rs[n] = string(r)
	}
	return map[string]any{
		"iss":                i.URL(),
		"sub":                subject,
		"aud":                []string{Audience, "account"},
		"azp":                Client,
		"typ":                "Bearer",
		"iat":                now,
		"exp":                now + 300,
		"jti":                uuid.NewString(),
		"scope":              "profile email",
		"realm_access":       map[string]any{"roles": rs},
		"preferred_username": subject,
	}
}

// Token returns a valid access token for subject with roles.
func (i *Issuer) Token(t testing.TB, subject string, roles ...auth.Role) string {
	t.Helper()
	return i.Sign(t, i.Claims(subject, roles...))
}

// Sign signs arbitrary claims with the issuer's current key.
func (i *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	tok, err := i.iss.Sign(claims)
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return tok
}

// SetDown makes every issuer endpoint answer 503 (true) or work again.
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

// RotateKey switches signing to a new key, keeping the old one published.
func (i *Issuer) RotateKey(t testing.TB) {
	t.Helper()
	if err := i.iss.RotateKey(nil); err != nil {
		t.Fatalf("authtest: %v", err)
	}
}

// JWKSRequests counts the requests for the JWKS so far.
func (i *Issuer) JWKSRequests() int { return int(i.jwks.Load()) }
