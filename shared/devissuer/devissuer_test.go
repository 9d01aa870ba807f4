package devissuer_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/devissuer"
)

// realmFile is the export Keycloak imports; the issuer must serve it as is.
const realmFile = "../../knative/keycloak/realm-taskfn.json"

// start serves realm on a loopback port under /realms/<realm>.
func start(t *testing.T, realm *devissuer.Realm) *devissuer.Issuer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	iss, err := devissuer.New("http://"+srv.Listener.Addr().String()+"/realms/"+realm.Realm, realm)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = iss
	srv.Start()
	t.Cleanup(srv.Close)
	return iss
}

func loadRealm(t *testing.T) *devissuer.Realm {
	t.Helper()
	realm, err := devissuer.LoadRealm(realmFile)
	if err != nil {
		t.Fatal(err)
	}
	return realm
}

type tokenReply struct {
	Status  int
	Body    map[string]any
	RawBody string
}

func postToken(t *testing.T, iss *devissuer.Issuer, form url.Values, basicUser, basicPass string) tokenReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, iss.URL()+"/protocol/openid-connect/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep tokenReply
	rep.Status = resp.StatusCode
	if err := json.NewDecoder(resp.Body).Decode(&rep.Body); err != nil {
		t.Fatalf("token reply is not JSON: %v", err)
	}
	return rep
}

// payload decodes a JWT's claims without checking it: the tests look at the
// shape, auth.Verifier checks the rest.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func verifier(t *testing.T, iss *devissuer.Issuer, allowedAZP ...string) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{
		Issuer: iss.URL(), Audience: "taskfn-api", AllowedAZP: allowedAZP,
		SigningAlgs: []string{"RS256"}, TokenCacheSize: 10,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPasswordGrantForDemoUsers(t *testing.T) {
	t.Parallel()
	iss := start(t, loadRealm(t))
	v := verifier(t, iss)
	tests := []struct {
		user  string
		id    string
		name  string
		roles []auth.Role
		// groups is the groups claim (the realm's group membership mapper,
		// full paths); projects what the verifier reads from it.
		groups   []any
		projects map[string]auth.ProjectRole
	}{
		{"alice", "6f1c2b4e-8d3a-4c5e-9f7a-1b2c3d4e5a01", "Alice Admin", []auth.Role{auth.RoleAdmin}, []any{}, nil},
		{"bob", "6f1c2b4e-8d3a-4c5e-9f7a-1b2c3d4e5b02", "Bob Manager", []auth.Role{auth.RoleManager},
			[]any{"/projects/ops/maintainer"}, map[string]auth.ProjectRole{"ops": auth.ProjectMaintainer}},
		{"carol", "6f1c2b4e-8d3a-4c5e-9f7a-1b2c3d4e5c03", "Carol Member", []auth.Role{auth.RoleMember},
			[]any{"/projects/web/member"}, map[string]auth.ProjectRole{"web": auth.ProjectMember}},
		{"dave", "6f1c2b4e-8d3a-4c5e-9f7a-1b2c3d4e5d04", "Dave Member", []auth.Role{auth.RoleMember},
			[]any{"/projects/web/member"}, map[string]auth.ProjectRole{"web": auth.ProjectMember}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			rep := postToken(t, iss, url.Values{
				"grant_type": {"password"}, "client_id": {"taskfn-cli"},
				"username": {tt.user}, "password": {tt.user},
			}, "", "")
			if rep.Status != http.StatusOK {
				t.Fatalf("status %d: %v", rep.Status, rep.Body)
			}
			if rep.Body["token_type"] != "Bearer" || rep.Body["expires_in"] != 300.0 || rep.Body["scope"] != "profile email" {
				t.Errorf("reply = %v", rep.Body)
			}
			tok, _ := rep.Body["access_token"].(string)
			claims := payload(t, tok)
			want := map[string]any{
				"iss": iss.URL(), "sub": tt.id, "azp": "taskfn-cli", "typ": "Bearer",
				"aud":                []any{"taskfn-api", "account"},
				"preferred_username": tt.user, "email": tt.user + "@taskfn.dev", "name": tt.name,
				"realm_access": map[string]any{"roles": []any{string(tt.roles[0])}},
				"groups":       tt.groups,
			}
			for k, w := range want {
				if diff := cmp.Diff(w, claims[k]); diff != "" {
					t.Errorf("claim %s (-want +got):\n%s", k, diff)
				}
			}
			if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 300 {
				t.Errorf("exp - iat = %v, want the realm's accessTokenLifespan 300", exp-iat)
			}
			id, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(auth.Identity{Subject: tt.id, Username: tt.user, Email: tt.user + "@taskfn.dev", Roles: tt.roles, ProjectRoles: tt.projects}, id); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	realm := loadRealm(t)
	realm.Users = append(realm.Users,
		devissuer.User{ID: "e0000000-0000-4000-8000-000000000005", Username: "erin", Enabled: false,
			Credentials: []devissuer.Credential{{Type: "password", Value: "erin"}}},
		devissuer.User{ID: "f0000000-0000-4000-8000-000000000006", Username: "frank", Enabled: true,
			Credentials: []devissuer.Credential{{Type: "password", Value: "frank", Temporary: true}}},
	)
	iss := start(t, realm)
	password := func(client, user, pass string) url.Values {
		return url.Values{"grant_type": {"password"}, "client_id": {client}, "username": {user}, "password": {pass}}
	}
	tests := []struct {
		name       string
		form       url.Values
		basic      [2]string
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{"wrong password", password("taskfn-cli", "alice", "bob"), [2]string{},
			401, "invalid_grant", "Invalid user credentials"},
		{"empty password", password("taskfn-cli", "alice", ""), [2]string{},
			401, "invalid_grant", "Invalid user credentials"},
		{"unknown user", password("taskfn-cli", "mallory", "mallory"), [2]string{},
			401, "invalid_grant", "Invalid user credentials"},
		{"disabled user", password("taskfn-cli", "erin", "erin"), [2]string{},
			400, "invalid_grant", "Account disabled"},
		{"disabled user, wrong password", password("taskfn-cli", "erin", "x"), [2]string{},
			401, "invalid_grant", "Invalid user credentials"},
		{"temporary password", password("taskfn-cli", "frank", "frank"), [2]string{},
			400, "invalid_grant", "Account is not fully set up"},
		{"unknown client", password("taskfn-web", "alice", "alice"), [2]string{},
			401, "invalid_client", "Invalid client or Invalid client credentials"},
		{"confidential client without secret", password("taskfn-api", "alice", "alice"), [2]string{},
			401, "invalid_client", "Invalid client or Invalid client credentials"},
		{"confidential client, wrong secret", url.Values{"grant_type": {"client_credentials"}}, [2]string{"taskfn-api", "guess"},
			401, "invalid_client", "Invalid client or Invalid client credentials"},
		{"confidential client lacks direct access grants", password("taskfn-api", "alice", "alice"),
			[2]string{"taskfn-api", "taskfn-api-dev-secret-change-me"},
			400, "unauthorized_client", "Client not allowed for direct access grants"},
		{"public client asks for a service account", url.Values{"grant_type": {"client_credentials"}, "client_id": {"taskfn-cli"}}, [2]string{},
			400, "unauthorized_client", "Public client not allowed to retrieve service account"},
		{"missing grant_type", url.Values{"client_id": {"taskfn-cli"}}, [2]string{},
			400, "invalid_request", "Missing form parameter: grant_type"},
		{"unsupported grant", url.Values{"grant_type": {"authorization_code"}, "client_id": {"taskfn-cli"}, "code": {"x"}}, [2]string{},
			400, "unsupported_grant_type", "Unsupported grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := postToken(t, iss, tt.form, tt.basic[0], tt.basic[1])
			if rep.Status != tt.wantStatus {
				t.Errorf("status = %d, want %d", rep.Status, tt.wantStatus)
			}
			want := map[string]any{"error": tt.wantError, "error_description": tt.wantDesc}
			if diff := cmp.Diff(want, rep.Body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	iss := start(t, loadRealm(t))
	tests := []struct {
		name  string
		form  url.Values
		basic [2]string
	}{
		{"secret in the body", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {"taskfn-api"}, "client_secret": {"taskfn-api-dev-secret-change-me"},
		}, [2]string{}},
		{"secret by basic auth", url.Values{"grant_type": {"client_credentials"}}, [2]string{"taskfn-api", "taskfn-api-dev-secret-change-me"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := postToken(t, iss, tt.form, tt.basic[0], tt.basic[1])
			if rep.Status != http.StatusOK {
				t.Fatalf("status %d: %v", rep.Status, rep.Body)
			}
			tok := rep.Body["access_token"].(string)
			// No audience mapper puts the API into a service account's
			// token, so it is refused unless its azp is allowed.
			if _, err := verifier(t, iss).Verify(context.Background(), tok); err == nil {
				t.Error("service-account token accepted without aud or an allowed azp")
			}
			id, err := verifier(t, iss, "taskfn-api").Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify with azp allowed: %v", err)
			}
			if id.Username != "service-account-taskfn-api" || id.Subject == "" || len(id.Roles) != 0 {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

// A service account held in the realm export (a user whose
// serviceAccountClientId names the client, as Keycloak exports it) gets its
// id, roles and groups into the client's tokens, and the client's audience
// mapper puts the API into aud; it cannot log in with a password.
func TestServiceAccountRoles(t *testing.T) {
	t.Parallel()
	iss := start(t, loadRealm(t))
	rep := postToken(t, iss, url.Values{"grant_type": {"client_credentials"}}, "taskfn-alertmanager", "taskfn-alertmanager-dev-secret-change-me")
	if rep.Status != http.StatusOK {
		t.Fatalf("status %d: %v", rep.Status, rep.Body)
	}
	id, err := verifier(t, iss).Verify(context.Background(), rep.Body["access_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "8c3f1e95-4d2a-4b7c-a6e1-3f9d2c7b5b01" || !id.Has(auth.RoleMember) || id.GroupRole("ops") != auth.ProjectMember {
		t.Errorf("identity = %+v", id)
	}
	login := postToken(t, iss, url.Values{"grant_type": {"password"}, "client_id": {"taskfn-cli"},
		"username": {"service-account-taskfn-alertmanager"}, "password": {""}}, "", "")
	if login.Status != http.StatusUnauthorized {
		t.Errorf("password login as the service account: %d %v", login.Status, login.Body)
	}
}

func TestDiscoveryAndKeys(t *testing.T) {
	t.Parallel()
	iss := start(t, loadRealm(t))
	get := func(t *testing.T, path string, into any) int {
		t.Helper()
		resp, err := http.Get(iss.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if into != nil {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	t.Run("discovery", func(t *testing.T) {
		t.Parallel()
		var doc map[string]any
		if code := get(t, "/.well-known/openid-configuration", &doc); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		for k, want := range map[string]string{
			"issuer":         iss.URL(),
			"jwks_uri":       iss.URL() + "/protocol/openid-connect/certs",
			"token_endpoint": iss.URL() + "/protocol/openid-connect/token",
		} {
			if doc[k] != want {
				t.Errorf("%s = %v, want %s", k, doc[k], want)
			}
		}
	})
	t.Run("jwks holds one public RS256 signing key", func(t *testing.T) {
		t.Parallel()
		var set jose.JSONWebKeySet
		if code := get(t, "/protocol/openid-connect/certs", &set); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if len(set.Keys) != 1 {
			t.Fatalf("%d keys", len(set.Keys))
		}
		k := set.Keys[0]
		if !k.IsPublic() || k.Algorithm != "RS256" || k.Use != "sig" || k.KeyID == "" {
			t.Errorf("key = %+v", k)
		}
	})
	t.Run("rotation keeps the old key published", func(t *testing.T) {
		t.Parallel()
		other := start(t, loadRealm(t))
		old, err := other.Sign(map[string]any{"sub": "x"})
		if err != nil {
			t.Fatal(err)
		}
		if err := other.RotateKey(nil); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(other.URL() + "/protocol/openid-connect/certs")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(old, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Keys) != 2 || len(set.Key(jws.Signatures[0].Header.KeyID)) != 1 {
			t.Errorf("after rotation the JWKS has %d keys, old kid published: %v",
				len(set.Keys), len(set.Key(jws.Signatures[0].Header.KeyID)) == 1)
		}
	})
	t.Run("unknown path", func(t *testing.T) {
		t.Parallel()
		if code := get(t, "/protocol/openid-connect/userinfo", nil); code != http.StatusNotFound {
			t.Errorf("status %d, want 404", code)
		}
	})
	t.Run("GET on the token endpoint", func(t *testing.T) {
		t.Parallel()
		if code := get(t, "/protocol/openid-connect/token", nil); code != http.StatusMethodNotAllowed {
			t.Errorf("status %d, want 405", code)
		}
	})
}

// TestRealmFile pins what the rest of the repo relies on in the export.
func TestRealmFile(t *testing.T) {
	t.Parallel()
	realm := loadRealm(t)
	if realm.Realm != "taskfn" || !realm.Enabled || realm.AccessTokenLifespan != 300 {
		t.Errorf("realm = %q enabled=%v lifespan=%d", realm.Realm, realm.Enabled, realm.AccessTokenLifespan)
	}
	var roles []string
	for _, r := range realm.Roles.Realm {
		roles = append(roles, r.Name)
	}
	if diff := cmp.Diff([]string{"task-admin", "task-manager", "task-member"}, roles); diff != "" {
		t.Errorf("realm roles (-want +got):\n%s", diff)
	}
	clients := map[string]devissuer.Client{}
	for _, c := range realm.Clients {
		clients[c.ClientID] = c
	}
	if api := clients["taskfn-api"]; api.PublicClient || api.Secret == "" {
		t.Errorf("taskfn-api must be confidential with a secret: %+v", api)
	}
	cli := clients["taskfn-cli"]
	// Its mappers: the API's audience, and the groups, by full path, that
	// give project roles (OIDC_PROJECT_GROUP_PREFIX /projects/).
	if !cli.PublicClient || !cli.DirectAccessGrantsEnabled || len(cli.ProtocolMappers) != 2 ||
		cli.ProtocolMappers[0].ProtocolMapper != "oidc-audience-mapper" ||
		cli.ProtocolMappers[0].Config["included.client.audience"] != "taskfn-api" ||
		cli.ProtocolMappers[1].ProtocolMapper != "oidc-group-membership-mapper" ||
		cli.ProtocolMappers[1].Config["full.path"] != "true" || cli.ProtocolMappers[1].Config["claim.name"] != "groups" {
		t.Errorf("taskfn-cli = %+v", cli)
	}
	for _, u := range realm.Users {
		if u.ServiceAccountClientID != "" { // logs in by its client's secret only
			if !u.Enabled || len(u.Credentials) != 0 {
				t.Errorf("service account %s: enabled=%v credentials=%+v", u.Username, u.Enabled, u.Credentials)
			}
			continue
		}
		if !u.Enabled || len(u.Credentials) != 1 || u.Credentials[0].Value != u.Username || u.Credentials[0].Temporary {
			t.Errorf("user %s: enabled=%v credentials=%+v", u.Username, u.Enabled, u.Credentials)
		}
	}
}

func TestLoadRealmRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"not JSON", `{"realm":`, "unexpected end"},
		{"no realm name", `{"enabled":true}`, "realm name is empty"},
		{"undefined role", `{"realm":"r","users":[{"id":"1","username":"a","realmRoles":["task-boss"]}]}`,
			`realm role "task-boss" is not defined`},
		{"duplicate username", `{"realm":"r","users":[{"id":"1","username":"a"},{"id":"2","username":"A"}]}`,
			`username "A" used twice`},
		{"audience of unknown client", `{"realm":"r","clients":[{"clientId":"c","publicClient":true,"protocolMappers":[
			{"protocolMapper":"oidc-audience-mapper","config":{"included.client.audience":"api","access.token.claim":"true"}}]}]}`,
			`unknown client "api"`},
		{"confidential client without secret", `{"realm":"r","clients":[{"clientId":"c"}]}`, "has no secret"},
		{"undefined group", `{"realm":"r","groups":[{"name":"projects","subGroups":[{"name":"web"}]}],
			"users":[{"id":"1","username":"a","groups":["/projects/web/member"]}]}`, `group "/projects/web/member" is not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "realm.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := devissuer.LoadRealm(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadRealm error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
