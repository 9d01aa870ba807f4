package report_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
)

// TestAdversarialBodies holds POST /reports and the build-report sink to a
// small answer and a bounded allocation for bodies built to multiply
// either (issue #21). Not parallel: the allocations measured are the
// process's.
func TestAdversarialBodies(t *testing.T) {
	e := newEnv(t, smallChunks)
	routes, sink := e.routes, e.sink
	ready := func(context.Context) error { return nil }
	api := httpx.NewRouter(zerolog.Nop(), prometheus.NewRegistry(), ready, routes...)
	token := e.token(t, "mallory", auth.RoleMember)

	t.Run("POST /reports", func(t *testing.T) {
		size := int(httpx.MaxBody)
		tests := []struct {
			name   string
			body   string
			status int
		}{
			{"unknown statuses", httpxtest.Fill(`{"kind":"tasks_export","filters":{"status":[`, `"x",`, `"x"]}}`, size), 400},
			{"blank statuses", httpxtest.Fill(`{"kind":"tasks_export","filters":{"status":[`, `"",`, `""]}}`, size), 400},
			{"statuses of numbers", httpxtest.Fill(`{"kind":"tasks_export","filters":{"status":[`, `0,`, `0]}}`, size), 400},
			{"statuses of objects", httpxtest.Fill(`{"kind":"tasks_export","filters":{"status":[`, `{"a":0},`, `{}]}}`, size), 400},
			{"statuses nested deep", httpxtest.Nest(`{"kind":"tasks_export","filters":{"status":`, `}}`, size), 400},
			{"many unknown keys", httpxtest.Keys(`{"kind":"tasks_export",`, `k`, `0`, `}`, size), 400},
			{"many unknown filters", httpxtest.Keys(`{"kind":"tasks_export","filters":{`, `k`, `0`, `}}`, size), 400},
			{"one huge unknown key", httpxtest.Fill(`{"`, `k`, `":0}`, size), 400},
			{"duplicate keys", httpxtest.Fill(`{`, `"kind":"x",`, `"kind":"x"}`, size), 400},
			{"huge kind", httpxtest.Fill(`{"kind":"`, `a`, `"}`, size), 422},
			{"huge query", httpxtest.Fill(`{"kind":"tasks_export","filters":{"q":"`, `a`, `"}}`, size), 422},
			{"huge escaped label", httpxtest.Fill(`{"kind":"tasks_export","filters":{"label":"`, `\u0000`, `"}}`, size), 422},
			{"huge due date", httpxtest.Fill(`{"kind":"tasks_export","filters":{"due_before":"`, `9`, `"}}`, size), 422},
			{"huge period", httpxtest.Fill(`{"kind":"status_summary","period":{"to":"2026-01-01","from":"`, `9`, `"}}`, size), 422},
			{"huge number", httpxtest.Fill(`{"kind":`, `9`, `}`, size), 422},
			{"unknown statuses, as many as allowed", `{"kind":"tasks_export","filters":{"status":["x"` + strings.Repeat(`,"x"`, httpx.MaxJSONTokens-10) + `]}}`, 422},
			{"over the limit", httpxtest.Fill(`{"kind":"`, `a`, `"}`, size+1), 413},
		}
		cases := make([]httpxtest.Case, len(tests))
		for i, tc := range tests {
			cases[i] = httpxtest.Case{Name: tc.name, Status: tc.status, Request: func() *http.Request {
				r := httptest.NewRequest("POST", "/reports", strings.NewReader(tc.body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+token)
				return r
			}}
		}
		httpxtest.CheckBounded(t, api, httpxtest.BoundsFor(httpx.MaxBody), cases, func(t *testing.T, _ httpxtest.Case, rec *httptest.ResponseRecorder) {
			apispec.Check(t, "POST", "/reports", rec.Result(), rec.Body.Bytes())
		})
	})

	t.Run("build-report", func(t *testing.T) {
		const size = 64 << 10 // the sink's limit
		typ := events.ReportRequested
		binary := func(data string) func() *http.Request {
			return func() *http.Request { return eventstest.Binary(typ, "application/json", data) }
		}
		cases := append(eventstest.Adversarial(typ, size), []httpxtest.Case{
			{Name: "huge report id", Status: 400, Request: binary(httpxtest.Fill(`{"report_id":"`, `a`, `"}`, size))},
			{Name: "data nested deep", Status: 400, Request: binary(httpxtest.Nest(`{"report_id":`, `}`, size))},
		}...)
		httpxtest.CheckBounded(t, sink.Route().Handler, httpxtest.BoundsFor(size), cases, nil)
	})
}
