package digest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// checkProblem fails unless err maps to status (0: no error) and, for a
// 422, names field.
func checkProblem(t *testing.T, err error, status int, field string) {
	t.Helper()
	if status == 0 {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	p := httpx.ProblemOf(context.Background(), err)
	if p.Status != status {
		t.Fatalf("error %v is a %d, want %d", err, p.Status, status)
	}
	if field == "" {
		return
	}
	var ve *errs.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != field {
		t.Fatalf("error %v, want a validation error naming only %s", err, field)
	}
}

// env is the preference routes served as the dev runner serves them.
type env struct {
	t   *testing.T
	svc *digest.Service
	srv *httptest.Server
	iss *authtest.Issuer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	iss := authtest.NewIssuer(t)
	cfg := digest.Config{Config: function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)}, Auth: iss.Config()}
	svc, err := digest.Open(t.Context(), "digest-test", cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return &env{t: t, svc: svc, srv: httpxtest.Serve(t, svc.Handler(svc.Routes...)), iss: iss}
}

type reply struct {
	status int
	body   []byte
}

// do sends a request as subject (a task-member), checking the answer
// against openapi.yaml.
func (e *env) do(subject, method, path, body string, roles ...auth.Role) reply {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewReader([]byte(body))
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(roles) == 0 {
		roles = []auth.Role{auth.RoleMember}
	}
	claims := e.iss.Claims(subject, roles...)
	claims["email"], claims["email_verified"] = subject+"@example.com", true
	req.Header.Set("Authorization", "Bearer "+e.iss.Sign(e.t, claims))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	apispec.Check(e.t, method, path, resp, b)
	return reply{status: resp.StatusCode, body: b}
}

func (r reply) prefs(t *testing.T) digest.Preferences {
	t.Helper()
	var p digest.Preferences
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return p
}
