package report_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// Claims decide who builds: a live lease turns a redelivery away with
// 503, an expired one is taken over, and a report out of attempts fails
// for good, once.
func TestClaims(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		setup      string // SQL run on the report first; $1 is its id
		wantStatus int
		wantReport report.Status
		completed  int // report.completed events after
	}{
		{name: "pending: built", wantStatus: 204, wantReport: report.StatusSucceeded, completed: 1},
		{name: "another worker holds it", setup: `UPDATE reports SET status = 'running', attempt = 1, lease_until = now() + interval '1 hour' WHERE id = $1`,
			wantStatus: 503, wantReport: report.StatusRunning},
		{name: "its worker died", setup: `UPDATE reports SET status = 'running', attempt = 1, lease_until = now() - interval '1 second' WHERE id = $1`,
			wantStatus: 204, wantReport: report.StatusSucceeded, completed: 1},
		{name: "out of attempts", setup: `UPDATE reports SET status = 'running', attempt = 3, lease_until = now() - interval '1 second' WHERE id = $1`,
			wantStatus: 204, wantReport: report.StatusFailed, completed: 1},
		{name: "finished already", setup: `UPDATE reports SET status = 'failed', error = 'x', finished_at = now() WHERE id = $1`,
			wantStatus: 204, wantReport: report.StatusFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, tok, id := exportReport(t, tc.setup)
			ev := e.outboxEvents(t, events.ReportRequested)[0]
			status, body := e.deliver(t, ev)
			if status != tc.wantStatus {
				t.Fatalf("delivery: %d, want %d: %s", status, tc.wantStatus, body)
			}
			if v := e.view(t, tok, id); v.Status != tc.wantReport {
				t.Errorf("report %+v, want %s", v, tc.wantReport)
			}
			e.deliver(t, ev)
			if n := len(e.outboxEvents(t, events.ReportCompleted)); n != tc.completed {
				t.Errorf("%d report.completed, want %d", n, tc.completed)
			}
		})
	}
}

// exportReport is a fresh env with the export fixture and alice's
// tasks_export report, on which setup (SQL, $1 the report's id) has run
// unless it is empty.
func exportReport(t *testing.T, setup string) (e *env, token string, id uuid.UUID) {
	t.Helper()
	e = newEnv(t, smallChunks)
	exportFixture(t, e)
	token = e.token(t, "alice", auth.RoleMember)
	id = e.request(t, token, `{"kind":"tasks_export"}`)
	if setup != "" {
		if _, err := e.db.Primary.Exec(context.Background(), setup, id); err != nil {
			t.Fatal(err)
		}
	}
	return e, token, id
}

// A worker that lost its lease mid-build keeps nothing: the attempt that
// took over owns the content.
func TestLostLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	exportFixture(t, e)
	tok := e.token(t, "mgr", auth.RoleManager)
	id := e.request(t, tok, `{"kind":"tasks_export","format":"jsonl"}`)
	ctx := context.Background()
	first, claim, err := e.store.Claim(ctx, id, time.Minute, 3)
	if err != nil || claim != report.Claimed {
		t.Fatalf("claim: %v %v", claim, err)
	}
	if err := e.store.AppendChunk(ctx, id, first.Attempt, 0, []byte("stale\n"), 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Its lease runs out; a redelivery takes over and finishes.
	if _, err := e.db.Primary.Exec(ctx, `UPDATE reports SET lease_until = now() - interval '1 second' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	e.build(t, id)
	if err := e.store.AppendChunk(ctx, id, first.Attempt, 1, []byte("late\n"), 2, time.Minute); err != report.ErrLeaseLost {
		t.Errorf("stale append: %v, want ErrLeaseLost", err)
	}
	if _, err := e.store.Succeed(ctx, first, 1, 6, 1); err != report.ErrLeaseLost {
		t.Errorf("stale finish: %v, want ErrLeaseLost", err)
	}
	_, _, body := e.call(t, "GET", "/reports/"+id.String()+"/content", tok, "")
	if got := parseJSONL(t, body); len(got) != 5 || strings.Contains(string(body), "stale") {
		t.Errorf("content %s", body)
	}
	var chunks int
	if err := e.db.Primary.QueryRow(ctx, `SELECT count(*) FROM report_chunks WHERE attempt = $1`, first.Attempt).Scan(&chunks); err != nil || chunks != 0 {
		t.Errorf("%d chunks of the lost attempt left, %v", chunks, err)
	}
}

func TestSinkRejectsPoison(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	typed := func(typ, data string) http.Header {
		return http.Header{"Ce-Specversion": {"1.0"}, "Ce-Id": {uuid.NewString()}, "Ce-Source": {events.SourceReports},
			"Ce-Type": {typ}, "Content-Type": {"application/json"}, "X-Data": {data}}
	}
	tests := []struct {
		name   string
		header http.Header
		want   int
	}{
		{"not JSON", typed(events.ReportRequested, `{"report_id":`), 400},
		{"no report id", typed(events.ReportRequested, `{"kind":"tasks_export","requested_by":"a"}`), 400},
		{"unknown report", typed(events.ReportRequested, `{"report_id":"`+uuid.NewString()+`","kind":"tasks_export","requested_by":"a"}`), 400},
		{"report.completed shares the topic", typed(events.ReportCompleted, `{}`), 204},
		{"not a CloudEvent", http.Header{"Content-Type": {"application/json"}, "X-Data": {`{}`}}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := tc.header.Get("X-Data")
			tc.header.Del("X-Data")
			req, err := http.NewRequest("POST", e.url+"/", strings.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

// completed_at follows the status through the store's own writes.
func TestCompletedAtTrigger(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	ctx := context.Background()
	s, err := task.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := s.Create(ctx, "", task.Task{Title: "t", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	completedAt := func() *time.Time {
		var c *time.Time
		if err := e.db.Primary.QueryRow(ctx, "SELECT completed_at FROM tasks WHERE id = $1", tk.ID).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	set := func(change func(*task.Task)) task.Task {
		out, err := s.Update(ctx, "", tk.ID, func(cur task.Task) (task.Task, error) { change(&cur); return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if completedAt() != nil {
		t.Error("a new todo task has completed_at")
	}
	done := set(func(t *task.Task) { t.Status = task.StatusDone })
	first := completedAt()
	if first == nil || !first.Equal(done.UpdatedAt) {
		t.Fatalf("completed_at %v, want %v", first, done.UpdatedAt)
	}
	set(func(t *task.Task) { t.Title = "renamed" })
	if c := completedAt(); c == nil || !c.Equal(*first) {
		t.Errorf("an edit of a done task moved completed_at to %v", c)
	}
	set(func(t *task.Task) { t.Status = task.StatusInProgress })
	if c := completedAt(); c != nil {
		t.Errorf("reopened task keeps completed_at %v", c)
	}
}

// A report whose build was lost (its event dead-lettered) is failed once
// it is older than the cutoff, with one report.completed; one that may
// still be built is left alone. A late redelivery changes nothing after.
func TestFailAbandoned(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		setup      string // SQL run on the report first; $1 is its id
		wantReport report.Status
		completed  int // report.completed events after
	}{
		{name: "pending, never delivered", setup: `UPDATE reports SET created_at = now() - interval '3 hours' WHERE id = $1`,
			wantReport: report.StatusFailed, completed: 1},
		{name: "pending, recent", setup: `UPDATE reports SET created_at = now() - interval '1 hour' WHERE id = $1`,
			wantReport: report.StatusPending},
		{name: "running, lease ran out long ago", setup: `UPDATE reports SET status = 'running', attempt = 2, created_at = now() - interval '5 hours', lease_until = now() - interval '3 hours' WHERE id = $1`,
			wantReport: report.StatusFailed, completed: 1},
		{name: "running, lease ran out recently", setup: `UPDATE reports SET status = 'running', attempt = 1, created_at = now() - interval '5 hours', lease_until = now() - interval '1 hour' WHERE id = $1`,
			wantReport: report.StatusRunning},
		{name: "running, live lease", setup: `UPDATE reports SET status = 'running', attempt = 1, created_at = now() - interval '5 hours', lease_until = now() + interval '1 minute' WHERE id = $1`,
			wantReport: report.StatusRunning},
		{name: "succeeded long ago", setup: `UPDATE reports SET status = 'succeeded', attempt = 1, created_at = now() - interval '5 hours', finished_at = now() - interval '4 hours', content_bytes = 0, chunks = 0 WHERE id = $1`,
			wantReport: report.StatusSucceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, tok, id := exportReport(t, tc.setup)
			ctx := context.Background()
			n, err := e.store.FailAbandoned(ctx, time.Now().Add(-2*time.Hour), 10)
			if err != nil || n != int64(tc.completed) {
				t.Fatalf("FailAbandoned: %d, %v; want %d", n, err, tc.completed)
			}
			v := e.view(t, tok, id)
			if v.Status != tc.wantReport {
				t.Errorf("report %+v, want %s", v, tc.wantReport)
			}
			completed := e.outboxEvents(t, events.ReportCompleted)
			if len(completed) != tc.completed {
				t.Fatalf("%d report.completed, want %d", len(completed), tc.completed)
			}
			if tc.wantReport != report.StatusFailed {
				return
			}
			var data events.ReportCompletedData
			if err := completed[0].DataAs(&data); err != nil || data.Status != "failed" || data.Error != report.Abandoned {
				t.Errorf("report.completed data %+v, %v", data, err)
			}
			// Its event, redelivered after all: the report stays failed.
			if status, body := e.deliver(t, e.outboxEvents(t, events.ReportRequested)[0]); status != 204 {
				t.Errorf("late delivery: %d %s", status, body)
			}
			if v := e.view(t, tok, id); v.Status != report.StatusFailed || len(e.outboxEvents(t, events.ReportCompleted)) != 1 {
				t.Errorf("after a late delivery: %+v", v)
			}
			if again, err := e.store.FailAbandoned(ctx, time.Now().Add(-2*time.Hour), 10); again != 0 || err != nil {
				t.Errorf("second run: %d, %v", again, err)
			}
		})
	}
}

// Lost reports stop counting against their requester's limit of
// unfinished ones (3 in these tests) once failed.
func TestFailAbandonedFreesTheLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	tok := e.token(t, "bob", auth.RoleMember)
	for range 3 {
		e.request(t, tok, `{"kind":"status_summary"}`)
	}
	if status, _, body := e.call(t, "POST", "/reports", tok, `{"kind":"status_summary"}`); status != 429 {
		t.Fatalf("fourth unfinished report: %d %s, want 429", status, body)
	}
	ctx := context.Background()
	if _, err := e.db.Primary.Exec(ctx, `UPDATE reports SET created_at = now() - interval '3 hours'`); err != nil {
		t.Fatal(err)
	}
	if n, err := e.store.FailAbandoned(ctx, time.Now().Add(-2*time.Hour), 2); n != 2 || err != nil {
		t.Fatalf("first batch: %d, %v; want 2", n, err)
	}
	if n, err := e.store.FailAbandoned(ctx, time.Now().Add(-2*time.Hour), 2); n != 1 || err != nil {
		t.Fatalf("second batch: %d, %v; want 1", n, err)
	}
	e.request(t, tok, `{"kind":"status_summary"}`)
}
