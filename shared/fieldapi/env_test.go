package fieldapi_test

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
	"github.com/taskfn/taskfn/shared/fieldapi"
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

// pod is one process serving the task, project and field routes, as the
// dev runner wires them: one role resolver for all.
type pod struct {
	t   testing.TB
	db  *pg.DB
	srv *httptest.Server
	iss *authtest.Issuer
}

func newPod(t testing.TB) *pod {
	t.Helper()
	iss := authtest.NewIssuer(t)
	cfg := taskapi.Config{
		Config:   function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)},
		Auth:     iss.Config(),
		Cache:    cachetest.Config(t, ""),
		Projects: project.ResolverConfig{RolesTTL: 300 * time.Millisecond, RolesCacheSize: 100},
	}
	cachetest.Cleanup(t, cfg.Cache)
	svc, err := taskapi.Open(t.Context(), "fieldapi-test", cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	ps, err := projectapi.Wire(svc.Base, projectapi.Config{Config: cfg.Config, Auth: cfg.Auth, Projects: cfg.Projects}, nil, svc.Roles)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fieldapi.Wire(svc.Base, fieldapi.Config{Config: cfg.Config, Auth: cfg.Auth, Projects: cfg.Projects}, nil, svc.Roles, svc.Cache)
	if err != nil {
		t.Fatal(err)
	}
	routes := append(append(svc.Routes, ps.Routes...), fs...)
	srv := httpxtest.Serve(t, svc.Handler(routes...))
	return &pod{t: t, db: svc.DB, srv: srv, iss: iss}
}

// caller is who sends a request: a subject and its global roles.
type caller struct {
	sub   string
	roles []auth.Role
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
func (p *pod) do(c caller, method, path, body string, header ...string) reply {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	hr, err := http.NewRequestWithContext(context.Background(), method, p.srv.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if c.sub != "" {
		hr.Header.Set("Authorization", "Bearer "+p.iss.Sign(p.t, p.iss.Claims(c.sub, c.roles...)))
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
func (p *pod) must(want int, c caller, method, path, body string, header ...string) reply {
	p.t.Helper()
	r := p.do(c, method, path, body, header...)
	if r.status != want {
		p.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, c.sub, r.status, r.body, want)
	}
	return r
}
