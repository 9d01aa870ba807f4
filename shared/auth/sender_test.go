package auth_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/devissuer"
)

const kafkaSender = "system:serviceaccount:tasks:notify-oidc-sources.knative.dev-kafkasource"

// senderClaims are those of a token Knative's notify KafkaSource sends.
func senderClaims(iss string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{"iss": iss, "sub": kafkaSender, "aud": []string{"taskfn-notify"}, "iat": now, "exp": now + 600}
}

// sink is a sender-guarded handler counting what reaches it.
func sink(t *testing.T, cfg auth.SenderConfig) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	s, err := auth.NewSenders(cfg, "notify")
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	srv := httptest.NewServer(s.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		w.WriteHeader(http.StatusAccepted)
	})))
	t.Cleanup(srv.Close)
	return srv, &handled
}

func deliver(t *testing.T, url, authz string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func senderConfig(issuer string) auth.SenderConfig {
	return auth.SenderConfig{Issuer: issuer, SigningAlgs: []string{"RS256"},
		Senders: []string{"system:serviceaccount:*:*-oidc-sources.knative.dev-*"}}
}

func TestSenderIdentity(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	other, err := devissuer.New(iss.URL(), &devissuer.Realm{Realm: "forger", Enabled: true}) // same iss, its own key
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Sign(senderClaims(iss.URL()))
	if err != nil {
		t.Fatal(err)
	}
	srv, handled := sink(t, senderConfig(iss.URL()))
	with := func(change func(map[string]any)) string {
		c := senderClaims(iss.URL())
		change(c)
		return "Bearer " + iss.Sign(t, c)
	}
	tests := []struct {
		name  string
		authz string
		want  int
	}{
		{"the source's token", with(func(map[string]any) {}), http.StatusAccepted},
		{"a ping source", with(func(c map[string]any) {
			c["sub"] = "system:serviceaccount:tasks:remind-oidc-sources.knative.dev-pingsource"
		}), http.StatusAccepted},
		{"no token", "", http.StatusUnauthorized},
		{"not a JWT", "Bearer forged", http.StatusUnauthorized},
		{"another sink's audience", with(func(c map[string]any) { c["aud"] = []string{"taskfn-cleanup"} }), http.StatusUnauthorized},
		{"a pod's own service account", with(func(c map[string]any) { c["sub"] = "system:serviceaccount:tasks:default" }), http.StatusUnauthorized},
		{"expired", with(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), http.StatusUnauthorized},
		{"another issuer's key", "Bearer " + forged, http.StatusUnauthorized},
		{"a user's Keycloak token", "Bearer " + iss.Token(t, "alice", auth.RoleAdmin), http.StatusUnauthorized},
	}
	want := int32(0)
	for _, tc := range tests {
		resp := deliver(t, srv.URL, tc.authz)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusAccepted {
			want++
		}
		if got := handled.Load(); got != want {
			t.Fatalf("%s: %d deliveries handled, want %d", tc.name, got, want)
		}
	}
}

func TestSenderIssuerDown(t *testing.T) {
	t.Parallel()
	iss := authtest.NewIssuer(t)
	srv, handled := sink(t, senderConfig(iss.URL()))
	iss.SetDown(true)
	resp := deliver(t, srv.URL, "Bearer "+iss.Sign(t, senderClaims(iss.URL())))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || handled.Load() != 0 {
		t.Fatalf("issuer down: %d, Retry-After %q, %d handled; want 503 with Retry-After, none handled",
			resp.StatusCode, resp.Header.Get("Retry-After"), handled.Load())
	}
	iss.SetDown(false)
	// Discovery is retried at most once a second.
	deadline := time.Now().Add(5 * time.Second)
	for deliver(t, srv.URL, "Bearer "+iss.Sign(t, senderClaims(iss.URL()))).StatusCode != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatal("issuer back: deliveries still refused after 5s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// In a cluster the API server serves discovery and keys over TLS signed
// by the cluster CA, to service accounts only: the check trusts the CA
// file and presents the token file, read afresh on each fetch.
func TestSenderIssuerOverTLSWithToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("sa-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var iss *devissuer.Issuer
	var refused atomic.Int32
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sa-token-1" {
			refused.Add(1)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		iss.ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	var err error
	if iss, err = devissuer.New(api.URL, &devissuer.Realm{Realm: "cluster", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Sign(senderClaims(api.URL))
	if err != nil {
		t.Fatal(err)
	}

	cfg := senderConfig(api.URL)
	cfg.CAFile, cfg.TokenFile = caFile, tokenFile
	srv, _ := sink(t, cfg)
	if resp := deliver(t, srv.URL, "Bearer "+tok); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("with CA and token files: %d", resp.StatusCode)
	}
	if refused.Load() != 0 {
		t.Fatalf("%d issuer requests refused", refused.Load())
	}

	// Without the token file the issuer refuses discovery: the delivery is
	// not handled, and the source retries (503) rather than dead-letters.
	noToken := senderConfig(api.URL)
	noToken.CAFile = caFile
	srv2, handled := sink(t, noToken)
	if resp := deliver(t, srv2.URL, "Bearer "+tok); resp.StatusCode != http.StatusServiceUnavailable || handled.Load() != 0 {
		t.Fatalf("without the service-account token: %d", resp.StatusCode)
	}
}

func TestNewSendersRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*auth.SenderConfig){
		"no sender patterns": func(c *auth.SenderConfig) { c.Senders = nil },
		"a bad pattern":      func(c *auth.SenderConfig) { c.Senders = []string{"system:serviceaccount:["} },
		"a missing CA file":  func(c *auth.SenderConfig) { c.CAFile = "/nonexistent/ca.crt" },
		"no issuer":          func(c *auth.SenderConfig) { c.Issuer = "" },
	} {
		cfg := senderConfig("https://kubernetes.default.svc")
		change(&cfg)
		if _, err := auth.NewSenders(cfg, "notify"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
