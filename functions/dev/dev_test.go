package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestREADMEFlow runs the dev runner as make dev does and walks the README's
// curl examples over HTTP: a password-grant token from the development
// issuer, then create, read, list, change and delete a task.
func TestREADMEFlow(t *testing.T) {
	db := pgtest.New(t)
	var cfg devConfig
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.ExternalIssuer = ""
	cfg.RealmFile = "../../knative/keycloak/realm-taskfn.json"
	cfg.Task.DB.URL = db.Primary.Config().ConnString()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev runner: %v", err)
		}
	})
	waitReady(t, base)

	call := func(method, path, token, body string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
		}
		var out map[string]any
		if len(b) > 0 {
			if err := json.Unmarshal(b, &out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, b)
			}
		}
		return out
	}
	token := func(user, password string, want int) string {
		t.Helper()
		resp, err := http.PostForm(base+"/realms/taskfn/protocol/openid-connect/token", url.Values{
			"grant_type": {"password"}, "client_id": {"taskfn-cli"}, "username": {user}, "password": {password},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		if resp.StatusCode != want {
			t.Fatalf("token for %s: %d, want %d", user, resp.StatusCode, want)
		}
		return tok.AccessToken
	}

	token("carol", "wrong", http.StatusUnauthorized)
	carol := token("carol", "carol", 200)
	dave := token("dave", "dave", 200)
	call("GET", "/tasks", "", "", 401)

	created := call("POST", "/tasks", carol, `{"title":"Write the release notes","priority":"high","labels":["docs"]}`, 201)
	id, _ := created["id"].(string)
	call("GET", "/tasks/"+id, carol, "", 200)
	call("GET", "/tasks/"+id, dave, "", 404) // not dave's to see
	page := call("GET", "/tasks?status=todo&limit=10", carol, "", 200)
	if items, _ := page["items"].([]any); len(items) != 1 {
		t.Fatalf("list: %v", page)
	}
	changed := call("PATCH", "/tasks/"+id, carol, `{"status":"in_progress"}`, 200)
	if changed["status"] != "in_progress" || changed["version"] != float64(2) {
		t.Fatalf("patch: %v", changed)
	}
	call("DELETE", "/tasks/"+id, carol, "", 204)
	call("GET", "/tasks/"+id, carol, "", 404)

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`taskfn_http_requests_total{method="POST",route="create-task",status="201"} 1`, "taskfn_pgxpool_max_conns", "taskfn_http_request_duration_seconds_bucket"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("dev runner not ready in 20s")
}
