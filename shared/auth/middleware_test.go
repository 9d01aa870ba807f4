package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/devissuer"
	"github.com/taskfn/taskfn/shared/httpx"
)

const unauthorizedType = httpx.ProblemBase + "unauthorized"

// TestAttacks sends every token a forger or a confused client might try
// through Require over real HTTP: each must get a 401 and never reach the
// handler.
func TestAttacks(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	srv := protect(t, newVerifier(t, iss.Config()))
	pub := publishedKey(t, iss.URL())
	foreign := startDevIssuer(t, attackerKey())
	now := time.Now().Unix()

	with := func(change func(c map[string]any)) string {
		c := iss.Claims("mallory", auth.RoleAdmin)
		change(c)
		return iss.Sign(t, c)
	}
	// alg "none": an unsigned token with an empty signature part.
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	algNone := enc(map[string]string{"alg": "none", "typ": "JWT", "kid": pub.KeyID}) + "." +
		enc(iss.Claims("mallory", auth.RoleAdmin)) + "."
	// HS256 keyed with the published RSA key: a verifier that takes alg
	// from the token would check an HMAC with a key everyone has.
	der, err := x509.MarshalPKIXPublicKey(pub.Key)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsPEM := signWith(t, jose.HS256, pemKey, pub.KeyID, iss.Claims("mallory", auth.RoleAdmin))
	hsDER := signWith(t, jose.HS256, der, pub.KeyID, iss.Claims("mallory", auth.RoleAdmin))
	// Tampered: a member's real token with the payload swapped for one
	// that claims task-admin.
	parts := strings.Split(iss.Token(t, "mallory", auth.RoleMember), ".")
	parts[1] = enc(iss.Claims("mallory", auth.RoleAdmin))
	tampered := strings.Join(parts, ".")
	foreignToken, err := foreign.Sign(map[string]any{
		"iss": foreign.URL(), "sub": "mallory", "aud": []string{"taskfn-api"}, "azp": "taskfn-cli",
		"typ": "Bearer", "iat": now, "exp": now + 300, "realm_access": map[string]any{"roles": []string{"task-admin"}},
	})
	if err != nil {
		t.Fatal(err)
	}

	const (
		invalid   = "the access token is invalid"
		expired   = "the access token has expired"
		notYet    = "the access token is not valid yet"
		wrongAud  = "the access token was not issued for this API"
		notAccess = "the token is not an access token"
	)
	tests := []struct {
		name     string
		header   []string // Authorization values
		wantDesc string   // "" means a bare challenge: no credentials were sent
	}{
		{"no token", nil, ""},
		{"another scheme", []string{"Basic YWxpY2U6YWxpY2U="}, ""},
		{"empty bearer", []string{"Bearer "}, "the bearer token is empty"},
		{"two Authorization headers", []string{"Bearer " + iss.Token(t, "a", auth.RoleAdmin), "Bearer x"},
			"the request carries more than one Authorization header"},
		{"alg none", []string{"Bearer " + algNone}, invalid},
		{"HS256 keyed with the public key PEM", []string{"Bearer " + hsPEM}, invalid},
		{"HS256 keyed with the public key DER", []string{"Bearer " + hsDER}, invalid},
		{"unknown kid", []string{"Bearer " + signWith(t, jose.RS256, attackerKey(), "no-such-kid",
			iss.Claims("mallory", auth.RoleAdmin))}, invalid},
		{"foreign key under the issuer's kid", []string{"Bearer " + signWith(t, jose.RS256, attackerKey(), pub.KeyID,
			iss.Claims("mallory", auth.RoleAdmin))}, invalid},
		{"no kid, foreign key", []string{"Bearer " + signWith(t, jose.RS256, attackerKey(), "",
			iss.Claims("mallory", auth.RoleAdmin))}, invalid},
		{"expired", []string{"Bearer " + with(func(c map[string]any) { c["iat"], c["exp"] = now-3600, now-600 })}, expired},
		{"expired just beyond the skew", []string{"Bearer " + with(func(c map[string]any) { c["exp"] = now - 45 })}, expired},
		{"nbf in the future", []string{"Bearer " + with(func(c map[string]any) { c["nbf"] = now + 600 })}, notYet},
		{"iat in the future", []string{"Bearer " + with(func(c map[string]any) { c["iat"] = now + 600 })}, notYet},
		{"no exp", []string{"Bearer " + with(func(c map[string]any) { delete(c, "exp") })}, invalid},
		{"wrong iss", []string{"Bearer " + with(func(c map[string]any) { c["iss"] = "https://evil.example/realms/taskfn" })}, invalid},
		{"iss with a trailing slash", []string{"Bearer " + with(func(c map[string]any) { c["iss"] = iss.URL() + "/" })}, invalid},
		{"wrong aud", []string{"Bearer " + with(func(c map[string]any) { c["aud"] = "account" })}, wrongAud},
		{"no aud, azp not allowed", []string{"Bearer " + with(func(c map[string]any) { delete(c, "aud") })}, wrongAud},
		{"tampered payload", []string{"Bearer " + tampered}, invalid},
		{"second issuer with its own key", []string{"Bearer " + foreignToken}, invalid},
		{"ID token", []string{"Bearer " + with(func(c map[string]any) { c["typ"] = "ID" })}, notAccess},
		{"refresh token", []string{"Bearer " + with(func(c map[string]any) { c["typ"] = "Refresh" })}, notAccess},
		{"no sub", []string{"Bearer " + with(func(c map[string]any) { delete(c, "sub") })}, "the access token names no subject"},
		{"garbage", []string{"Bearer not-a-jwt"}, invalid},
		{"three garbage parts", []string{"Bearer aaa.bbb.ccc"}, invalid},
		{"oversized", []string{"Bearer " + strings.Repeat("a", 20<<10)}, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := call(t, srv.URL, tt.header...)
			if rep.Status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401 (identity %+v)", rep.Status, rep.Identity)
			}
			wantChallenge := `Bearer realm="taskfn"`
			if tt.wantDesc != "" {
				wantChallenge += `, error="invalid_token", error_description="` + tt.wantDesc + `"`
			}
			if got := rep.Header.Get("WWW-Authenticate"); got != wantChallenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
			}
			if rep.Problem.Type != unauthorizedType || rep.Problem.Status != http.StatusUnauthorized {
				t.Errorf("problem = %+v", rep.Problem)
			}
			if tt.wantDesc != "" && rep.Problem.Detail != tt.wantDesc {
				t.Errorf("detail = %q, want %q", rep.Problem.Detail, tt.wantDesc)
			}
		})
	}
}

func TestRequireRoles(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss.Config())
	tests := []struct {
		name   string
		need   []auth.Role
		holds  []auth.Role
		status int
	}{
		{"no taskfn role", []auth.Role{auth.RoleAdmin, auth.RoleManager, auth.RoleMember}, nil, http.StatusForbidden},
		{"member where admin is needed", []auth.Role{auth.RoleAdmin}, []auth.Role{auth.RoleMember}, http.StatusForbidden},
		{"one of several", []auth.Role{auth.RoleAdmin, auth.RoleManager}, []auth.Role{auth.RoleManager}, http.StatusOK},
		{"any valid caller when no role is named", nil, nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := protect(t, v, tt.need...)
			rep := call(t, srv.URL, "Bearer "+iss.Token(t, "u-1", tt.holds...))
			if rep.Status != tt.status {
				t.Fatalf("status = %d, want %d", rep.Status, tt.status)
			}
			if tt.status != http.StatusForbidden {
				return
			}
			if got, want := rep.Header.Get("WWW-Authenticate"), `Bearer realm="taskfn", error="insufficient_scope"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			if rep.Problem.Type != httpx.ProblemBase+"forbidden" {
				t.Errorf("problem = %+v", rep.Problem)
			}
		})
	}
}

// attackerKey is a key the issuer never published; one per test binary.
var attackerKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newVerifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// reply is what a client sees from a Require-protected route.
type reply struct {
	Status   int
	Header   http.Header
	Problem  httpx.Problem // for 4xx/5xx
	Identity auth.Identity // for 200: what the handler found in its context
}

// protect serves a handler behind v.Require(roles...) that answers with the
// identity from its context.
func protect(t testing.TB, v *auth.Verifier, roles ...auth.Role) *httptest.Server {
	t.Helper()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok {
			http.Error(w, "no identity in context", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(id)
	})
	srv := httptest.NewServer(v.Require(next, roles...))
	t.Cleanup(srv.Close)
	return srv
}

// call sends GET with the given Authorization header values.
func call(t testing.TB, url string, authorization ...string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/tasks", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rep := reply{Status: resp.StatusCode, Header: resp.Header}
	into := any(&rep.Problem)
	if resp.StatusCode == http.StatusOK {
		into = &rep.Identity
	} else if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q, want application/problem+json", resp.StatusCode, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("decoding %d body: %v", resp.StatusCode, err)
	}
	return rep
}

// startDevIssuer runs a second, independent issuer with its own key and URL.
func startDevIssuer(t testing.TB, key *rsa.PrivateKey) *devissuer.Issuer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	iss, err := devissuer.NewWithKey("http://"+srv.Listener.Addr().String()+"/realms/taskfn",
		&devissuer.Realm{Realm: "taskfn", Enabled: true}, key)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = iss
	srv.Start()
	t.Cleanup(srv.Close)
	return iss
}

// signWith signs claims with any key and header, as an attacker would.
func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publishedKey fetches the issuer's JWKS as anyone can, returning its key.
func publishedKey(t testing.TB, issuerURL string) jose.JSONWebKey {
	t.Helper()
	resp, err := http.Get(issuerURL + "/protocol/openid-connect/certs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) == 0 {
		t.Fatal("empty JWKS")
	}
	return set.Keys[0]
}
