package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/devissuer"
)

var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// clock is a settable time source for the verifier and its key set.
type clock struct{ ns atomic.Int64 }

func newClock() *clock { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()) }

func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// testIssuer is a dev issuer whose availability and request counts the test
// controls.
type testIssuer struct {
	*devissuer.Issuer
	down      atomic.Bool
	discovery atomic.Int64
	jwks      atomic.Int64
}

func startIssuer(t *testing.T) *testIssuer {
	t.Helper()
	ti := &testIssuer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/openid-configuration"):
			ti.discovery.Add(1)
		case strings.HasSuffix(r.URL.Path, "/certs"):
			ti.jwks.Add(1)
		}
		if ti.down.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		ti.Issuer.ServeHTTP(w, r)
	}))
	iss, err := devissuer.NewWithKey("http://"+srv.Listener.Addr().String()+"/realms/taskfn",
		&devissuer.Realm{Realm: "taskfn", Enabled: true}, testKey())
	if err != nil {
		t.Fatal(err)
	}
	ti.Issuer = iss
	srv.Start()
	t.Cleanup(srv.Close)
	return ti
}

func (ti *testIssuer) token(t *testing.T, exp time.Time, roles ...string) string {
	t.Helper()
	tok, err := ti.Sign(map[string]any{
		"iss": ti.URL(), "sub": "u-1", "aud": "taskfn-api", "typ": "Bearer", "preferred_username": "one",
		"iat": exp.Add(-5 * time.Minute).Unix(), "exp": exp.Unix(), "realm_access": map[string]any{"roles": roles},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func testVerifier(t *testing.T, ti *testIssuer, c *clock, change func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{Issuer: ti.URL(), Audience: "taskfn-api", ClockSkew: 30 * time.Second,
		TokenCacheSize: 10, JWKSMinRefresh: 10 * time.Second}
	if change != nil {
		change(&cfg)
	}
	v, err := NewVerifier(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.now = c.now
	return v
}

func TestCacheLifetime(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t)
	tests := []struct {
		name      string
		cacheSize int
		advance   time.Duration // after exp
		wantErr   bool
	}{
		{"cached, before exp", 10, -time.Minute, false},
		{"cached, within the skew after exp", 10, 29 * time.Second, false},
		{"cached, past exp and skew", 10, 31 * time.Second, true},
		{"uncached, within the skew", 0, 29 * time.Second, false},
		{"uncached, past exp and skew", 0, 31 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newClock()
			v := testVerifier(t, ti, c, func(cfg *Config) { cfg.TokenCacheSize = tt.cacheSize })
			exp := c.now().Add(2 * time.Minute).Truncate(time.Second)
			tok := ti.token(t, exp, "task-member")
			ctx := context.Background()
			if _, err := v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
			if tt.cacheSize > 0 && v.cache.Len() != 1 {
				t.Fatalf("cache holds %d entries after one verification", v.cache.Len())
			}
			c.advance(exp.Sub(c.now()) + tt.advance)
			id, err := v.Verify(ctx, tok)
			if tt.wantErr {
				var te *tokenError
				if !errors.As(err, &te) || te.desc != descExpired {
					t.Fatalf("Verify = %v, want the expired error", err)
				}
				if tt.cacheSize > 0 && v.cache.Len() != 0 {
					t.Error("expired entry left in the cache")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(Identity{Subject: "u-1", Username: "one", Roles: []Role{RoleMember}}, id); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCacheSkipsTheKeySet shows that a cached token needs neither the
// issuer nor a signature check: it verifies while the issuer is down and the
// key set was never asked again.
func TestCacheSkipsTheKeySet(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t)
	c := newClock()
	v := testVerifier(t, ti, c, nil)
	tok := ti.token(t, c.now().Add(time.Minute))
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	// A caller scribbling on its identity must not reach the cache.
	id.Roles = append(id.Roles, RoleAdmin)

	// A fresh key set: any miss would have to fetch from the issuer.
	v.keys.Store(newKeySet(ti.URL()+"/protocol/openid-connect/certs", v.client, v.cfg.SigningAlgs, time.Second, time.Second))
	ti.down.Store(true)
	again, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("cached token: %v", err)
	}
	if len(again.Roles) != 0 {
		t.Errorf("cached roles = %v, want none", again.Roles)
	}
	if _, err := v.Verify(context.Background(), ti.token(t, c.now().Add(2*time.Minute))); !errors.Is(err, ErrUnavailable) {
		t.Errorf("uncached token with the issuer down: %v, want ErrUnavailable", err)
	}
}

// TestDiscoveryRetrySpacing: while the issuer fails, a burst of requests
// causes one discovery attempt per retry interval, not one per request.
func TestDiscoveryRetrySpacing(t *testing.T) {
	t.Parallel()
	ti := startIssuer(t)
	ti.down.Store(true)
	c := newClock()
	v := testVerifier(t, ti, c, nil)
	tok := ti.token(t, c.now().Add(time.Minute))
	burst := func() {
		var wg sync.WaitGroup
		for range 25 {
			wg.Go(func() {
				if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnavailable) {
					t.Errorf("Verify while down = %v", err)
				}
			})
		}
		wg.Wait()
	}
	steps := []struct {
		name    string
		advance time.Duration
		down    bool
		want    int64 // discovery requests so far
	}{
		{"first burst", 0, true, 1},
		{"burst within the interval", 500 * time.Millisecond, true, 1},
		{"burst after the interval", 600 * time.Millisecond, true, 2},
	}
	for _, s := range steps {
		c.advance(s.advance)
		burst()
		if got := ti.discovery.Load(); got != s.want {
			t.Errorf("%s: %d discovery requests, want %d", s.name, got, s.want)
		}
	}
	ti.down.Store(false)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnavailable) {
		t.Errorf("retry inside the interval = %v, want the remembered ErrUnavailable", err)
	}
	c.advance(time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("after recovery: %v", err)
	}
}
