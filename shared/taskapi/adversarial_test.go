package taskapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
)

// TestAdversarialBodies sends bodies built to multiply the work or the
// answer to every task route that reads one, and holds each to a small
// problem and a bounded allocation.
//
// It does not run in parallel: the allocations are the process's
// (runtime.MemStats), and a parallel test would add its own. Measured
// (go1.26, 2-core AMD EPYC, without -race; the least of 3 runs, which
// differ by under 0.1 MiB): a body refused for its tokens allocates
// 1.0 MiB, the body itself; the worst, a 1 MiB due_at, 9.0 MiB of the
// 16 MiB allowed. Before the limits, 349,524 blank labels allocated
// 114 MiB and a 1 MiB unknown key came back whole in the 400.
func TestAdversarialBodies(t *testing.T) {
	e := newEnv(t)
	tk := e.create(carol, map[string]any{"title": "target"})
	size := int(httpx.MaxBody)
	// Within the token limit: the most a body can make validation report.
	many := httpx.MaxJSONTokens - 10
	tests := []struct {
		name   string
		body   string
		status int
		fields []string // for a 422, the fields listed
	}{
		{name: "blank labels", body: httpxtest.Fill(`{"title":"x","labels":[`, `"",`, `""]}`, size), status: 400},
		{name: "duplicate labels", body: httpxtest.Fill(`{"title":"x","labels":[`, `"a",`, `"a"]}`, size), status: 400},
		{name: "long labels", body: httpxtest.Fill(`{"title":"x","labels":[`, `"`+strings.Repeat("l", 51)+`",`, `"l"]}`, size), status: 400},
		{name: "labels of numbers", body: httpxtest.Fill(`{"title":"x","labels":[`, `0,`, `0]}`, size), status: 400},
		{name: "labels of objects", body: httpxtest.Fill(`{"title":"x","labels":[`, `{"id":0},`, `{}]}`, size), status: 400},
		{name: "labels nested deep", body: httpxtest.Nest(`{"title":"x","labels":`, `}`, size), status: 400},
		{name: "labels nested deep, unclosed", body: httpxtest.Fill(`{"title":"x","labels":`, `[`, ``, size), status: 400},
		{name: "read-only field repeated", body: httpxtest.Fill(`{"title":"x",`, `"id":0,`, `"version":0}`, size), status: 400},
		{name: "read-only field of a huge array", body: httpxtest.Fill(`{"title":"x","version":[`, `0,`, `0]}`, size), status: 400},
		{name: "duplicate keys", body: httpxtest.Fill(`{`, `"title":1,`, `"title":1}`, size), status: 400},
		{name: "many unknown keys", body: httpxtest.Keys(`{"title":"x",`, `k`, `0`, `}`, size), status: 400},
		{name: "one huge unknown key", body: httpxtest.Fill(`{"`, `k`, `":0}`, size), status: 400},
		{name: "huge title", body: httpxtest.Fill(`{"title":"`, `a`, `"}`, size), status: 422, fields: []string{"title"}},
		{name: "huge escaped description", body: httpxtest.Fill(`{"title":"x","description":"`, `\u0000`, `"}`, size), status: 422, fields: []string{"description"}},
		{name: "huge due_at", body: httpxtest.Fill(`{"title":"x","due_at":"`, `9`, `"}`, size), status: 422, fields: []string{"due_at"}},
		{name: "huge assignee", body: httpxtest.Fill(`{"title":"x","assignee_id":"`, `a`, `"}`, size), status: 422, fields: []string{"assignee_id"}},
		{name: "huge number", body: httpxtest.Fill(`{"title":`, `9`, `}`, size), status: 422, fields: []string{"title"}},
		{name: "blank labels, as many as allowed", body: `{"title":"x","labels":[""` + strings.Repeat(`,""`, many-1) + `]}`, status: 422, fields: []string{"labels"}},
		{name: "bad labels, as many as allowed", body: `{"title":"x","labels":["a"` + strings.Repeat(`,"a"`, 20) + strings.Repeat(`,0`, many-21) + `]}`, status: 422, fields: []string{"labels"}},
		{name: "read-only field, as often as allowed", body: `{"title":"x"` + strings.Repeat(`,"id":0`, many/2) + `}`, status: 422, fields: []string{"id"}},
		{name: "over the limit", body: httpxtest.Fill(`{"title":"`, `a`, `"}`, size+1), status: 413},
	}
	fields := map[string][]string{}
	for _, tc := range tests {
		fields[tc.name] = tc.fields
	}
	h := e.srv.Config.Handler
	for _, rt := range []struct{ method, path, contentType string }{
		{"POST", "/tasks", "application/json"},
		{"PATCH", "/tasks/" + tk.ID.String(), "application/merge-patch+json"},
	} {
		t.Run(rt.method, func(t *testing.T) {
			cases := make([]httpxtest.Case, len(tests))
			for i, tc := range tests {
				cases[i] = httpxtest.Case{Name: tc.name, Status: tc.status, Request: func() *http.Request {
					r := httptest.NewRequest(rt.method, rt.path, strings.NewReader(tc.body))
					r.Header.Set("Content-Type", rt.contentType)
					r.Header.Set("Authorization", "Bearer "+e.tokens[carol])
					return r
				}}
			}
			httpxtest.CheckBounded(t, h, httpxtest.BoundsFor(httpx.MaxBody), cases, func(t *testing.T, c httpxtest.Case, rec *httptest.ResponseRecorder) {
				body := rec.Body.Bytes()
				apispec.Check(t, rt.method, rt.path, rec.Result(), body)
				if c.Status == http.StatusUnprocessableEntity {
					var p httpx.Problem
					reply{body: body}.decode(t, &p)
					var got []string
					for _, f := range p.Errors {
						got = append(got, f.Field)
					}
					if d := cmp.Diff(fields[c.Name], got); d != "" || p.ErrorsOmitted != 0 {
						t.Errorf("fields (-want +got):\n%s%d omitted", d, p.ErrorsOmitted)
					}
				}
			})
		})
	}
	if n := e.rows(); n != 1 {
		t.Errorf("%d tasks stored, want only the target", n)
	}
}
