package projectapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/projectapi"
	"github.com/taskfn/taskfn/shared/taskapi"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// rolesTTL is short, so the removal bound is tested quickly, and not
// zero, so it is tested through the cache.
const rolesTTL = 300 * time.Millisecond

// pod is one process serving the task and project routes, as the dev
// runner wires them: one role resolver for both.
type pod struct {
	t   testing.TB
	db  *pg.DB
	srv *httptest.Server
	iss *authtest.Issuer
}

type world struct {
	iss *authtest.Issuer
	cfg taskapi.Config
}

func newWorld(t testing.TB) *world {
	t.Helper()
	iss := authtest.NewIssuer(t)
	cfg := taskapi.Config{
		Config:   function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)},
		Auth:     iss.Config(),
		Cache:    cachetest.Config(t, ""),
		Projects: project.ResolverConfig{RolesTTL: rolesTTL, RolesCacheSize: 100},
	}
	cachetest.Cleanup(t, cfg.Cache)
	return &world{iss: iss, cfg: cfg}
}

// pod starts another process of the same deployment: same database and
// Redis keys, its own role cache.
func (w *world) pod(t testing.TB) *pod {
	t.Helper()
	svc, err := taskapi.Open(t.Context(), "projectapi-test", w.cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	ps, err := projectapi.Wire(svc.Base, projectapi.Config{Config: w.cfg.Config, Auth: w.cfg.Auth, Projects: w.cfg.Projects}, nil, svc.Roles)
	if err != nil {
		t.Fatal(err)
	}
	srv := httpxtest.Serve(t, svc.Handler(append(svc.Routes, ps.Routes...)...))
	return &pod{t: t, db: svc.DB, srv: srv, iss: w.iss}
}

// caller is who sends a request: a subject, its global roles and its
// Keycloak groups.
type caller struct {
	sub    string
	roles  []auth.Role
	groups []string
}

func (c caller) token(t testing.TB, iss *authtest.Issuer) string {
	claims := iss.Claims(c.sub, c.roles...)
	if c.groups != nil {
		claims["groups"] = c.groups
	}
	return iss.Sign(t, claims)
}

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

// do sends a request as c and checks the response against openapi.yaml.
func (p *pod) do(c caller, method, path string, body any, header ...string) reply {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	hr, err := http.NewRequestWithContext(context.Background(), method, p.srv.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.sub != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token(p.t, p.iss))
	}
	for i := 0; i+1 < len(header); i += 2 {
		hr.Header.Set(header[i], header[i+1])
	}
	resp, err := p.srv.Client().Do(hr)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	apispec.Check(p.t, method, path, resp, b)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// must is do that fails the test unless the status is want.
func (p *pod) must(want int, c caller, method, path string, body any, header ...string) reply {
	p.t.Helper()
	r := p.do(c, method, path, body, header...)
	if r.status != want {
		p.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, c.sub, r.status, r.body, want)
	}
	return r
}
