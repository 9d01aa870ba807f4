package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/report/render"
)

func TestMain(m *testing.M) {
	if os.Getenv(memChildEnv) != "" {
		// TestExportMemory's child: no tests, no template database.
		if err := memoryChild(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	pgtest.Main(m)
}

// env is the report service as the dev runner wires it (report.Open: the
// routes and the build-report sink on one function.Base) on a fresh
// database, behind a real listener, with a Keycloak-shaped issuer.
type env struct {
	db     *pg.DB
	store  *report.Store
	issuer *authtest.Issuer
	url    string // the API's routes and the sink's POST /
	routes []httpx.Route
	sink   *report.Sink
}

// smallChunks makes even small reports span several chunks.
var smallChunks = report.WorkerConfig{ChunkBytes: 1024, Lease: time.Minute, BuildTimeout: time.Minute, MaxAttempts: 3}

// testLimits are newEnv's: 3 unfinished reports per requester, the other
// limits as by default.
var testLimits = report.Limits{MaxActive: 3}

// newEnv is an env whose worker builds with cfg, within testLimits.
func newEnv(t testing.TB, cfg report.WorkerConfig) *env { return openEnv(t, cfg, testLimits) }

// openEnv is an env whose worker builds with worker and whose API keeps
// requesters within limits.
func openEnv(t testing.TB, worker report.WorkerConfig, limits report.Limits) *env {
	t.Helper()
	iss := authtest.NewIssuer(t)
	worker.Render = render.Formats()
	cfg := report.Config{
		Config: function.Config{Log: logging.Config{Level: "warn"}, DB: pgtest.NewConfig(t)},
		Auth:   iss.Config(),
		Worker: worker,
		Limits: limits,
	}
	svc, err := report.Open(t.Context(), "report-test", cfg, zerolog.NewTestWriter(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	// One router, as the registry takes each HTTP metric once.
	ts := httptest.NewServer(svc.Handler(append(svc.Routes, svc.Sink.Route())...))
	t.Cleanup(ts.Close)
	return &env{db: svc.DB, store: svc.Store, issuer: iss, url: ts.URL, routes: svc.Routes, sink: svc.Sink}
}

func (e *env) token(t testing.TB, subject string, role auth.Role) string {
	t.Helper()
	return e.issuer.Token(t, subject, role)
}

// call sends a request to the API and returns status, headers and body.
func (e *env) call(t testing.TB, method, path, token, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, b := httpxtest.Call(t, nil, method, e.url+path, token, body)
	return resp.StatusCode, resp.Header, b
}

// request POSTs a report request and returns its id.
func (e *env) request(t testing.TB, token, body string) uuid.UUID {
	t.Helper()
	status, h, b := e.call(t, "POST", "/reports", token, body)
	if status != http.StatusAccepted {
		t.Fatalf("POST /reports: %d %s", status, b)
	}
	var v report.View
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if h.Get("Location") != "/reports/"+v.ID.String() || v.Status != report.StatusPending {
		t.Fatalf("POST /reports: Location %q, %+v", h.Get("Location"), v)
	}
	return v.ID
}

// view GETs a report.
func (e *env) view(t testing.TB, token string, id uuid.UUID) report.View {
	t.Helper()
	status, _, b := e.call(t, "GET", "/reports/"+id.String(), token, "")
	if status != 200 {
		t.Fatalf("GET report: %d %s", status, b)
	}
	var v report.View
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// outboxEvents returns the events of type typ in the outbox, oldest first,
// as the relay would publish them.
func (e *env) outboxEvents(t testing.TB, typ string) []event.Event {
	t.Helper()
	const q = `
SELECT event_id, topic, key, type, source, subject, data, created_at
FROM outbox
WHERE type = $1
ORDER BY id`
	rows, err := e.db.Primary.Query(context.Background(), q, typ)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event.Event, error) {
		var ev events.Event
		if err := r.Scan(&ev.ID, &ev.Topic, &ev.Key, &ev.Type, &ev.Source, &ev.Subject, &ev.Data, &ev.Time); err != nil {
			return event.Event{}, err
		}
		return ev.CloudEvent()
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// deliver POSTs ev to the sink in binary mode, as KafkaSource does.
func (e *env) deliver(t testing.TB, ev event.Event) (int, string) {
	t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), e.url+"/", ev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// build delivers the report.requested event of report id.
func (e *env) build(t testing.TB, id uuid.UUID) {
	t.Helper()
	for _, ev := range e.outboxEvents(t, events.ReportRequested) {
		if ev.Subject() == id.String() {
			if status, body := e.deliver(t, ev); status != http.StatusNoContent {
				t.Fatalf("build: %d %s", status, body)
			}
			return
		}
	}
	t.Fatalf("no report.requested for %s in the outbox", id)
}

// row is a task as the tests insert it, with the times they choose.
type row struct {
	title, status, priority, owner string
	project                        string // "": the owner's personal project
	assignee                       *string
	labels                         []string
	created, updated               time.Time
	due, completed                 *time.Time
}

// insert stores rows directly, so times are exactly as given, and returns
// their ids in order.
func insert(t testing.TB, db *pg.DB, rows ...row) []uuid.UUID {
	t.Helper()
	const q = `
INSERT INTO tasks (id, title, status, priority, owner_id, assignee_id, labels, created_at, updated_at, due_at, completed_at, project)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULLIF($12, ''))`
	ids := make([]uuid.UUID, len(rows))
	for i, r := range rows {
		ids[i] = uuid.Must(uuid.NewV7())
		if r.labels == nil {
			r.labels = []string{}
		}
		if r.updated.IsZero() {
			r.updated = r.created
		}
		if _, err := db.Primary.Exec(context.Background(), q, ids[i], r.title, r.status, r.priority, r.owner, r.assignee,
			r.labels, r.created, r.updated, r.due, r.completed, r.project); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func ptr[T any](v T) *T { return &v }

func day(s string) time.Time {
	d, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return d
}
