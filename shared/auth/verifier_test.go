package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/devissuer"
	"github.com/taskfn/taskfn/shared/httpx"
)

func TestValidTokens(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	srv := protect(t, newVerifier(t, iss.Config()))
	with := func(roles []auth.Role, change func(c map[string]any)) string {
		c := iss.Claims("u-1", roles...)
		c["preferred_username"] = "user1"
		change(c)
		return iss.Sign(t, c)
	}
	none := func(map[string]any) {}
	tests := []struct {
		name      string
		authz     string
		wantRoles []auth.Role
	}{
		{"realm role", "Bearer " + with([]auth.Role{auth.RoleMember}, none), []auth.Role{auth.RoleMember}},
		{"scheme in lower case", "bearer " + with([]auth.Role{auth.RoleAdmin}, none), []auth.Role{auth.RoleAdmin}},
		{"scheme in upper case", "BEARER " + with([]auth.Role{auth.RoleManager}, none), []auth.Role{auth.RoleManager}},
		{"aud as a single string", "Bearer " + with([]auth.Role{auth.RoleMember}, func(c map[string]any) {
			c["aud"] = "taskfn-api"
		}), []auth.Role{auth.RoleMember}},
		{"no typ claim", "Bearer " + with([]auth.Role{auth.RoleMember}, func(c map[string]any) { delete(c, "typ") }),
			[]auth.Role{auth.RoleMember}},
		{"expired but within the skew", "Bearer " + with([]auth.Role{auth.RoleMember}, func(c map[string]any) {
			c["exp"] = time.Now().Unix() - 10
		}), []auth.Role{auth.RoleMember}},
		{"client roles of the API count", "Bearer " + with(nil, func(c map[string]any) {
			c["resource_access"] = map[string]any{"taskfn-api": map[string]any{"roles": []string{"task-manager"}}}
		}), []auth.Role{auth.RoleManager}},
		{"realm and client roles merge, unknown ones dropped, duplicates once", "Bearer " + with(nil, func(c map[string]any) {
			c["realm_access"] = map[string]any{"roles": []string{"offline_access", "task-member", "default-roles-taskfn", "task-member"}}
			c["resource_access"] = map[string]any{
				"taskfn-api": map[string]any{"roles": []string{"task-admin", "task-member", "uma_protection"}},
				"account":    map[string]any{"roles": []string{"manage-account"}},
			}
		}), []auth.Role{auth.RoleAdmin, auth.RoleMember}},
		{"groups give project roles", "Bearer " + with([]auth.Role{auth.RoleMember}, func(c map[string]any) {
			c["groups"] = []string{"/projects/web/member", "/staff", "/projects/ops/viewer"}
		}), []auth.Role{auth.RoleMember}},
		{"another client's roles do not count", "Bearer " + with([]auth.Role{auth.RoleMember}, func(c map[string]any) {
			c["resource_access"] = map[string]any{"taskfn-web": map[string]any{"roles": []string{"task-admin"}}}
		}), []auth.Role{auth.RoleMember}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep := call(t, srv.URL, tt.authz)
			if rep.Status != http.StatusOK {
				t.Fatalf("status = %d: %+v", rep.Status, rep.Problem)
			}
			want := auth.Identity{Subject: "u-1", Username: "user1", Roles: tt.wantRoles}
			if strings.Contains(tt.name, "groups") {
				want.ProjectRoles = map[string]auth.ProjectRole{"web": auth.ProjectMember, "ops": auth.ProjectViewer}
			}
			if diff := cmp.Diff(want, rep.Identity); diff != "" {
				t.Errorf("identity in context (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllowedAZP(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	// A token Keycloak issues without an audience mapper: aud is only
	// "account".
	token := func(azp string) string {
		c := iss.Claims("u-1", auth.RoleMember)
		c["aud"], c["azp"] = "account", azp
		return iss.Sign(t, c)
	}
	tests := []struct {
		name    string
		allowed []string
		azp     string
		want    int
	}{
		{"not configured", nil, "taskfn-web", http.StatusUnauthorized},
		{"listed", []string{"taskfn-cli", "taskfn-web"}, "taskfn-web", http.StatusOK},
		{"not listed", []string{"taskfn-cli"}, "taskfn-web", http.StatusUnauthorized},
		{"empty azp never matches", []string{"taskfn-cli"}, "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := iss.Config()
			cfg.AllowedAZP = tt.allowed
			srv := protect(t, newVerifier(t, cfg))
			if rep := call(t, srv.URL, "Bearer "+token(tt.azp)); rep.Status != tt.want {
				t.Errorf("status = %d, want %d (%+v)", rep.Status, tt.want, rep.Problem)
			}
		})
	}
}

func TestIssuerDown(t *testing.T) {
	t.Parallel()
	t.Run("answering errors at first use, then back", func(t *testing.T) {
		t.Parallel()
		iss := authtest.NewIssuer(t)
		v := newVerifier(t, iss.Config())
		srv := protect(t, v)
		token := iss.Token(t, "u-1", auth.RoleMember)
		iss.SetDown(true)
		expectUnavailable(t, v, srv.URL, token)
		iss.SetDown(false)
		expectRecovery(t, v, srv.URL, token)
	})
	t.Run("refusing connections at first use, then started", func(t *testing.T) {
		t.Parallel()
		// Take a free port and release it: connections are refused until
		// the issuer listens there.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		iss, err := devissuer.NewWithKey("http://"+addr+"/realms/taskfn", &devissuer.Realm{Realm: "taskfn"}, attackerKey())
		if err != nil {
			t.Fatal(err)
		}
		v := newVerifier(t, auth.Config{Issuer: iss.URL(), Audience: "taskfn-api", JWKSMinRefresh: 50 * time.Millisecond})
		srv := protect(t, v)
		now := time.Now().Unix()
		token, err := iss.Sign(map[string]any{"iss": iss.URL(), "sub": "u-1", "aud": "taskfn-api", "typ": "Bearer",
			"iat": now, "exp": now + 300})
		if err != nil {
			t.Fatal(err)
		}
		expectUnavailable(t, v, srv.URL, token)

		l, err = net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port %s taken meanwhile (rare: rerun): %v", addr, err)
		}
		up := httptest.NewUnstartedServer(iss)
		up.Listener.Close()
		up.Listener = l
		up.Start()
		t.Cleanup(up.Close)
		expectRecovery(t, v, srv.URL, token)
	})
}

func expectUnavailable(t *testing.T, v *auth.Verifier, url, token string) {
	t.Helper()
	_, err := v.Verify(context.Background(), token)
	if !errors.Is(err, auth.ErrUnavailable) || errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify error = %v, want ErrUnavailable only", err)
	}
	if err := v.Ready(context.Background()); !errors.Is(err, auth.ErrUnavailable) {
		t.Errorf("Ready = %v, want ErrUnavailable", err)
	}
	rep := call(t, url, "Bearer "+token)
	if rep.Status != http.StatusServiceUnavailable || rep.Problem.Type != httpx.ProblemBase+"unavailable" {
		t.Errorf("status = %d, problem %+v; want 503 unavailable", rep.Status, rep.Problem)
	}
	if rep.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if strings.Contains(rep.Problem.Detail, "127.0.0.1") {
		t.Errorf("detail leaks the issuer address: %q", rep.Problem.Detail)
	}
}

// expectRecovery waits for the retry interval to let a new attempt through.
func expectRecovery(t *testing.T, v *auth.Verifier, url, token string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rep := call(t, url, "Bearer "+token)
		if rep.Status == http.StatusOK {
			break
		}
		if rep.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("status = %d after the issuer came back", rep.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := v.Ready(context.Background()); err != nil {
		t.Errorf("Ready after recovery = %v", err)
	}
}

func TestNewVerifierDoesNoIO(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	if _, err := auth.NewVerifier(auth.Config{Issuer: srv.URL + "/realms/taskfn", Audience: "taskfn-api"}, nil); err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("NewVerifier made %d requests", n)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	v := newVerifier(t, iss.Config())
	ctx := context.Background()
	before := iss.Token(t, "u-1", auth.RoleMember)
	if _, err := v.Verify(ctx, before); err != nil {
		t.Fatal(err)
	}
	fetches := iss.JWKSRequests()
	iss.RotateKey(t)
	after := iss.Token(t, "u-2", auth.RoleMember)
	if publishedKey(t, iss.URL()).KeyID == "" {
		t.Fatal("no kid after rotation")
	}

	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(ctx, after)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token under the new key still refused: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if iss.JWKSRequests() <= fetches {
		t.Error("the new key was accepted without refetching the JWKS")
	}
	// The old key stays published, as Keycloak keeps it passive.
	if _, err := v.Verify(ctx, iss.Token(t, "u-3", auth.RoleMember)); err != nil {
		t.Errorf("second token under the new key: %v", err)
	}
	if _, err := v.Verify(ctx, before); err != nil {
		t.Errorf("token under the old key: %v", err)
	}
}

// TestUnknownKidFloodIsRateLimited sends tokens with random kids and
// counts what reaches the issuer's JWKS endpoint: at most one fetch per
// JWKS_MIN_REFRESH of the flood's own length, however long a loaded
// machine makes it. The flood is counted, not time-boxed: it runs for at
// least three refresh intervals, until it has outnumbered the fetches it
// could cause 20 to 1 and an unknown kid has caused a refetch.
func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	cfg := iss.Config()
	cfg.JWKSMinRefresh = 200 * time.Millisecond
	v := newVerifier(t, cfg)
	ctx := context.Background()
	// Signed before the clock starts: the first use of attackerKey
	// generates it, which alone can take seconds under -race.
	tokens := make([]string, 16)
	for i := range tokens {
		tokens[i] = signWith(t, jose.RS256, attackerKey(), fmt.Sprintf("random-kid-%d-%d", i, time.Now().UnixNano()),
			iss.Claims("mallory", auth.RoleAdmin))
	}
	if _, err := v.Verify(ctx, iss.Token(t, "u-1", auth.RoleMember)); err != nil {
		t.Fatal(err)
	}
	// The keys were fetched just now, so no fetch may come before start +
	// JWKSMinRefresh: in e since start, at most e/JWKSMinRefresh + 1.
	start, fetchesBefore := time.Now(), iss.JWKSRequests()
	limit := func(e time.Duration) int64 { return int64(e/cfg.JWKSMinRefresh) + 1 }
	const workers, ratio = 4, 20
	var (
		wg       sync.WaitGroup
		accepted atomic.Int64
		sent     atomic.Int64
	)
	// Until a refetch: a refetch is due from start + JWKSMinRefresh, and
	// only a broken limiter makes the flood run into the 30 s that end it.
	refetched := func() bool { return iss.JWKSRequests() > fetchesBefore }
	flooding := func() bool {
		e := time.Since(start)
		return e < 30*time.Second && (e < 3*cfg.JWKSMinRefresh || sent.Load() < ratio*limit(e) || !refetched())
	}
	for w := range workers {
		wg.Go(func() {
			for i := w; flooding(); i += workers {
				sent.Add(1)
				if _, err := v.Verify(ctx, tokens[i%len(tokens)]); !errors.Is(err, auth.ErrInvalidToken) {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	if n := accepted.Load(); n != 0 {
		t.Errorf("%d random-kid tokens not refused as invalid", n)
	}
	fetches := int64(iss.JWKSRequests() - fetchesBefore)
	allowed := limit(elapsed)
	t.Logf("%d tokens in %s caused %d JWKS fetches (limit %d)", sent.Load(), elapsed.Round(time.Millisecond), fetches, allowed)
	if fetches > allowed {
		t.Errorf("%d JWKS fetches in %s, want at most %d", fetches, elapsed, allowed)
	}
	if fetches < 1 {
		t.Error("an unknown kid never caused a refetch")
	}
	if sent.Load() < ratio*fetches {
		t.Errorf("only %d tokens sent for %d fetches: the flood did not outnumber them", sent.Load(), fetches)
	}
}

// TestConcurrentColdStart checks that simultaneous first requests share one
// discovery and one JWKS fetch.
func TestConcurrentColdStart(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	cfg := iss.Config()
	cfg.JWKSMinRefresh = time.Minute
	cfg.TokenCacheSize = 0
	v := newVerifier(t, cfg)
	token := iss.Token(t, "u-1", auth.RoleMember)
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for range 20 {
		wg.Go(func() {
			if _, err := v.Verify(context.Background(), token); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of 20 concurrent verifications failed", n)
	}
	if n := iss.JWKSRequests(); n != 1 {
		t.Errorf("%d JWKS fetches for 20 concurrent cold verifications, want 1", n)
	}
}
