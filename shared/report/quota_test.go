package report_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cleanup"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/report"
)

// quotaLimits are small enough to reach in a test.
var quotaLimits = report.Limits{MaxActive: 2, DailyMax: 3, StoredBytesMax: 1000, RetentionDays: 7}

// past is a report its requester asked for age ago, as the quota tests
// seed them.
type past struct {
	status report.Status
	age    time.Duration
	bytes  int64 // content, if succeeded
}

// seed inserts requestedBy's past reports, created as long ago as each
// says.
func seed(t *testing.T, e *env, requestedBy string, reports ...past) {
	t.Helper()
	const q = `
INSERT INTO reports (id, kind, format, requested_by, status, attempt, content_bytes, chunks, created_at, finished_at)
VALUES ($1, 'tasks_export', 'csv', $2, $3, 1,
        CASE WHEN $3 = 'succeeded' THEN $4::bigint END,
        CASE WHEN $3 = 'succeeded' THEN 1 END,
        now() - $5 * interval '1 millisecond',
        CASE WHEN $3 IN ('succeeded', 'failed') THEN now() - $5 * interval '1 millisecond' END)`
	for _, r := range reports {
		if _, err := e.db.Primary.Exec(context.Background(), q, uuid.Must(uuid.NewV7()), requestedBy, r.status, r.bytes, r.age.Milliseconds()); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	hour = time.Hour
	days = 24 * time.Hour
)

func done(age time.Duration, bytes int64) past {
	return past{status: report.StatusSucceeded, age: age, bytes: bytes}
}

// Each limit through POST /reports: a request that reaches it is
// accepted, one past it is 429 with a problem naming it and a Retry-After
// of when it frees. Every requester here is a different person.
func TestQuotas(t *testing.T) {
	t.Parallel()
	e := openEnv(t, smallChunks, quotaLimits)
	tests := []struct {
		name  string
		past  []past
		want  int
		slug  string        // the problem type, for a 429
		after time.Duration // the Retry-After, for a 429
		says  string        // in the problem's detail
	}{
		{name: "active: the last allowed", past: []past{{status: report.StatusPending}}, want: 202},
		{name: "active: one too many", past: []past{{status: report.StatusPending}, {status: report.StatusRunning}},
			want: 429, slug: "too-many-reports", after: 30 * time.Second},

		{name: "daily: the last allowed", past: []past{done(23*hour, 0), done(hour, 0)}, want: 202},
		{name: "daily: one too many", past: []past{done(23*hour, 0), done(2*hour, 0), done(hour, 0)},
			want: 429, slug: "too-many-reports-per-day", after: hour, says: "3 reports in 24 hours"},
		{name: "daily: failed requests count", past: []past{
			{status: report.StatusFailed, age: 20 * hour}, {status: report.StatusFailed, age: 2 * hour}, {status: report.StatusFailed, age: hour}},
			want: 429, slug: "too-many-reports-per-day", after: 4 * hour},
		{name: "daily: past the limit frees when all but 2 left the window",
			past: []past{done(23*hour, 0), done(22*hour, 0), done(3*hour, 0), done(2*hour, 0), done(hour, 0)},
			want: 429, slug: "too-many-reports-per-day", after: 21 * hour},
		{name: "daily: requests over 24 hours ago do not count", past: []past{done(25*hour, 0), done(30*hour, 0), done(47*hour, 0)}, want: 202},

		{name: "storage: at the limit", past: []past{done(6*days, 600), done(2*days, 400)}, want: 202},
		{name: "storage: over, frees when the oldest expires", past: []past{done(6*days, 600), done(2*days, 401)},
			want: 429, slug: "report-storage-full", after: days, says: "1001 bytes of content, over the 1000 allowed"},
		{name: "storage: over, frees when two expired", past: []past{done(6*days, 600), done(5*days, 300), done(2*days, 900)},
			want: 429, slug: "report-storage-full", after: 2 * days},
		{name: "storage: expired content does not count", past: []past{done(8*days, 5000), done(2*days, 1000)}, want: 202},

		{name: "daily and storage: the answer names the later", past: []past{done(23*hour, 0), done(2*hour, 0), done(hour, 1001)},
			want: 429, slug: "report-storage-full", after: 7*days - hour},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			who := "quota-" + strconv.Itoa(i)
			seed(t, e, who, tc.past...)
			resp, body := httpxtest.Call(t, nil, "POST", e.url+"/reports", e.token(t, who, auth.RoleMember), `{"kind":"tasks_export"}`)
			apispec.Check(t, "POST", "/reports", resp, body)
			if resp.StatusCode != tc.want {
				t.Fatalf("%d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusTooManyRequests {
				return
			}
			var p httpx.Problem
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			if p.Type != httpx.ProblemBase+tc.slug || !strings.Contains(p.Detail, tc.says) {
				t.Errorf("problem %+v, want type %s saying %q", p, tc.slug, tc.says)
			}
			// Whole seconds, rounded up, counted from the database's now:
			// a little less than seeded, as time passed since.
			secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if got := time.Duration(secs) * time.Second; err != nil || got > tc.after+time.Second || got < tc.after-time.Minute {
				t.Errorf("Retry-After %q, want about %s", resp.Header.Get("Retry-After"), tc.after)
			}
		})
	}
}

// Requests at once from one requester: exactly the daily limit of them
// pass, as the count is taken under the requester's lock.
func TestDailyLimitConcurrently(t *testing.T) {
	t.Parallel()
	e := openEnv(t, smallChunks, report.Limits{MaxActive: 100, DailyMax: 3})
	tok := e.token(t, "eager", auth.RoleMember)
	const n = 12
	var (
		start    = make(chan struct{})
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for range n {
		wg.Go(func() {
			<-start
			status, _, body := e.call(t, "POST", "/reports", tok, `{"kind":"status_summary"}`)
			if status != http.StatusAccepted && status != http.StatusTooManyRequests {
				t.Errorf("%d %s", status, body)
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	var stored int
	if err := e.db.Primary.QueryRow(context.Background(), `SELECT count(*) FROM reports WHERE requested_by = 'eager'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if statuses[http.StatusAccepted] != 3 || statuses[http.StatusTooManyRequests] != n-3 || stored != 3 {
		t.Errorf("answers %v and %d reports stored, want 3 accepted and stored, %d refused", statuses, stored, n-3)
	}
}

// An export over the row cap fails with a reason its requester reads,
// and keeps no content; one at the cap, and a summary over any number of
// tasks, succeed.
func TestExportRowCap(t *testing.T) {
	t.Parallel()
	worker := smallChunks
	worker.ExportMaxRows = 3
	e := openEnv(t, worker, testLimits)
	exportFixture(t, e) // alice sees 3 tasks, a manager all 5
	tests := []struct {
		name      string
		subject   string
		role      auth.Role
		body      string
		want      report.Status
		wantError string
	}{
		{"export at the cap", "alice", auth.RoleMember, `{"kind":"tasks_export"}`, report.StatusSucceeded, ""},
		{"export over the cap", "mgr", auth.RoleManager, `{"kind":"tasks_export","format":"jsonl"}`, report.StatusFailed,
			"more than 3 tasks match, the most one export may hold; narrow its filters"},
		{"export narrowed to the cap", "mgr2", auth.RoleManager, `{"kind":"tasks_export","filters":{"status":["todo","in_progress"]}}`, report.StatusSucceeded, ""},
		{"a summary has no row cap", "mgr3", auth.RoleManager, `{"kind":"status_summary"}`, report.StatusSucceeded, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := e.token(t, tc.subject, tc.role)
			id := e.request(t, tok, tc.body)
			e.build(t, id)
			v := e.view(t, tok, id)
			if v.Status != tc.want || v.Error != tc.wantError {
				t.Fatalf("report %+v, want %s %q", v, tc.want, tc.wantError)
			}
			var chunks int
			if err := e.db.Primary.QueryRow(context.Background(), `SELECT count(*) FROM report_chunks WHERE report_id = $1`, id).Scan(&chunks); err != nil {
				t.Fatal(err)
			}
			if (chunks == 0) != (tc.want == report.StatusFailed) {
				t.Errorf("%d chunks kept by a %s report", chunks, v.Status)
			}
		})
	}
}

// The settings' envconfig defaults are the defaults the code applies to a
// setting below 1, and the retention the limits count with is cleanup's.
func TestLimitDefaults(t *testing.T) {
	t.Parallel()
	tags := func(v any) map[string]string {
		out := map[string]string{}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			out[rt.Field(i).Tag.Get("envconfig")] = rt.Field(i).Tag.Get("default")
		}
		return out
	}
	limits, worker, retention := tags(report.Limits{}), tags(report.WorkerConfig{}), tags(cleanup.Retention{})
	for _, c := range []struct {
		name, got string
		want      int64
	}{
		{"REPORT_MAX_ACTIVE", limits["REPORT_MAX_ACTIVE"], report.DefaultMaxActive},
		{"REPORT_DAILY_MAX", limits["REPORT_DAILY_MAX"], report.DefaultDailyMax},
		{"REPORT_STORED_BYTES_MAX", limits["REPORT_STORED_BYTES_MAX"], report.DefaultStoredBytesMax},
		{"REPORT_RETENTION_DAYS", limits["REPORT_RETENTION_DAYS"], report.DefaultRetentionDays},
		{"REPORT_RETENTION_DAYS (cleanup)", retention["REPORT_RETENTION_DAYS"], report.DefaultRetentionDays},
		{"REPORT_EXPORT_MAX_ROWS", worker["REPORT_EXPORT_MAX_ROWS"], report.DefaultExportMaxRows},
	} {
		if c.got != strconv.FormatInt(c.want, 10) {
			t.Errorf("%s: default tag %q, want %d", c.name, c.got, c.want)
		}
	}
}
