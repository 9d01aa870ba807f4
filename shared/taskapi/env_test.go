package taskapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The people of every test: subjects are what tokens carry as "sub".
const (
	alice = "alice-admin"
	bob   = "bob-manager"
	carol = "carol-member"
	dave  = "dave-member"
	eve   = "eve-no-role"
)

var roles = map[string][]auth.Role{
	alice: {auth.RoleAdmin},
	bob:   {auth.RoleManager},
	carol: {auth.RoleMember},
	dave:  {auth.RoleMember},
	eve:   nil,
}

// env is one test's world: the ten routes wired as the functions wire
// them (Open) on its own database, its own key prefix on the local Redis
// and an issuer over HTTP, served by a real HTTP server.
type env struct {
	t      testing.TB
	db     *pg.DB
	cache  *cache.Cache
	reg    *prometheus.Registry
	srv    *httptest.Server
	tokens map[string]string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	iss := authtest.NewIssuer(t)
	return newPod(t, iss, testConfig(t, iss))
}

// newPod serves the routes wired on cfg with tokens of iss. Called again
// with the same cfg it is another pod of the same deployment: the same
// database and the same Redis keys, its own cache and registry.
func newPod(t testing.TB, iss *authtest.Issuer, cfg Config) *env {
	t.Helper()
	svc, srv := serveTasks(t, cfg)
	e := &env{t: t, db: svc.DB, cache: svc.Cache, reg: svc.Registry, srv: srv, tokens: map[string]string{}}
	for who, rs := range roles {
		e.tokens[who] = iss.Token(t, who, rs...)
	}
	return e
}

// testConfig is the task functions' configuration for one test: a fresh
// database, a key prefix of its own on the local Redis (emptied when t
// ends), tokens of iss, and only errors logged.
func testConfig(t testing.TB, iss *authtest.Issuer) Config {
	t.Helper()
	cfg := Config{
		Config: function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)},
		Auth:   iss.Config(),
		Cache:  cachetest.Config(t, ""),
	}
	cachetest.Cleanup(t, cfg.Cache)
	return cfg
}

// serveTasks wires the ten routes on cfg as the dev runner does (Open)
// and serves them, beside /healthz, /readyz and /metrics, until t ends.
func serveTasks(t testing.TB, cfg Config) (*Service, *httptest.Server) {
	t.Helper()
	svc, err := Open(t.Context(), "taskapi-test", cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, httpxtest.Serve(t, svc.Handler(svc.Routes...))
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r reply) task(t testing.TB) task.Task {
	t.Helper()
	var tk task.Task
	r.decode(t, &tk)
	return tk
}

func (r reply) problem(t *testing.T) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (body %s)", ct, r.body)
	}
	var p httpx.Problem
	r.decode(t, &p)
	return p
}

// req describes one call.
type req struct {
	method, path string
	as           string // who calls; "" sends no token
	body         any    // string, []byte, or a value to marshal as JSON
	contentType  string // default application/json when there is a body
	header       map[string]string
}

// do sends r over HTTP and checks the response against openapi.yaml.
func (e *env) do(r req) reply {
	e.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequestWithContext(context.Background(), r.method, e.srv.URL+r.path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.as != "" {
		hr.Header.Set("Authorization", "Bearer "+e.tokens[r.as])
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	apispec.Check(e.t, r.method, r.path, resp, b)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// create makes a task as who and returns it.
func (e *env) create(who string, body map[string]any) task.Task {
	e.t.Helper()
	r := e.do(req{method: "POST", path: "/tasks", as: who, body: body})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create as %s: %d %s", who, r.status, r.body)
	}
	return r.task(e.t)
}

// rows counts the tasks table, to prove a failure changed nothing.
func (e *env) rows() int {
	e.t.Helper()
	var n int
	if err := e.db.Primary.QueryRow(context.Background(), "SELECT count(*) FROM tasks").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}
