package report_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// exportFixture is the tasks the export tests share: alice owns some, is
// assigned one, and others belong to bob and carol.
func exportFixture(t *testing.T, e *env) map[string]uuid.UUID {
	t.Helper()
	ids := insert(t, e.db,
		row{title: "alice todo", status: "todo", priority: "low", owner: "alice", labels: []string{"ops", "q3"},
			created: day("2026-01-01T10:00:00Z"), due: ptr(day("2026-02-01T00:00:00Z"))},
		row{title: "=HYPERLINK(\"http://evil\")", status: "done", priority: "high", owner: "alice",
			created: day("2026-01-02T10:00:00Z"), updated: day("2026-01-03T10:00:00Z")},
		row{title: "bob's, for alice", status: "in_progress", priority: "urgent", owner: "bob", assignee: ptr("alice"),
			created: day("2026-01-03T10:00:00Z")},
		row{title: "bob alone", status: "todo", priority: "medium", owner: "bob",
			created: day("2026-01-04T10:00:00Z")},
		row{title: "carol's \"quoted\"\nmultiline", status: "done", priority: "low", owner: "carol", assignee: ptr("bob"),
			created: day("2026-01-05T10:00:00Z")},
	)
	names := []string{"alice todo", "alice formula", "bob for alice", "bob alone", "carol"}
	out := map[string]uuid.UUID{}
	for i, n := range names {
		out[n] = ids[i]
	}
	return out
}

// fetchTasks reads tasks back as the store has them, in the order given.
func fetchTasks(t *testing.T, e *env, ids []uuid.UUID) []task.Task {
	t.Helper()
	s, err := task.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	var out []task.Task
	for _, id := range ids {
		tk, err := s.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tk)
	}
	return out
}

// An export holds exactly the tasks its requester may see that match the
// filters, oldest first, in either format.
func TestExportContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	ids := exportFixture(t, e)
	pick := func(names ...string) []uuid.UUID {
		var out []uuid.UUID
		for _, n := range names {
			out = append(out, ids[n])
		}
		return out
	}
	tests := []struct {
		name    string
		subject string
		role    auth.Role
		body    string
		want    []uuid.UUID
	}{
		{"member: own and assigned, csv", "alice", auth.RoleMember, `{"kind":"tasks_export"}`,
			pick("alice todo", "alice formula", "bob for alice")},
		{"member: own and assigned, jsonl", "alice", auth.RoleMember, `{"kind":"tasks_export","format":"jsonl"}`,
			pick("alice todo", "alice formula", "bob for alice")},
		{"member cannot widen with owner_id", "alice", auth.RoleMember, `{"kind":"tasks_export","filters":{"owner_id":"bob"}}`,
			pick("bob for alice")},
		{"manager: everything", "mgr", auth.RoleManager, `{"kind":"tasks_export","format":"jsonl"}`,
			pick("alice todo", "alice formula", "bob for alice", "bob alone", "carol")},
		{"manager: filtered by status and assignee", "mgr", auth.RoleManager,
			`{"kind":"tasks_export","filters":{"status":["done","in_progress"],"assignee_id":"bob"}}`, pick("carol")},
		{"label filter", "alice", auth.RoleMember, `{"kind":"tasks_export","filters":{"label":"ops"}}`, pick("alice todo")},
		{"due filter", "mgr", auth.RoleAdmin, `{"kind":"tasks_export","filters":{"due_before":"2026-03-01T00:00:00Z"}}`, pick("alice todo")},
		{"nothing matches", "dave", auth.RoleMember, `{"kind":"tasks_export"}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := e.token(t, tc.subject, tc.role)
			id := e.request(t, tok, tc.body)
			e.build(t, id)
			v := e.view(t, tok, id)
			if v.Status != report.StatusSucceeded || v.Rows == nil || *v.Rows != int64(len(tc.want)) || v.ContentURL == "" {
				t.Fatalf("report %+v", v)
			}
			status, h, body := e.call(t, "GET", v.ContentURL, tok, "")
			if status != 200 || h.Get("Content-Type") != v.ContentType || h.Get("Content-Length") != strconv.Itoa(len(body)) ||
				!strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") || *v.SizeBytes != int64(len(body)) {
				t.Fatalf("content: %d %v (%d bytes)", status, h, len(body))
			}
			want := fetchTasks(t, e, tc.want)
			var got []task.Task
			if v.Format == report.FormatCSV {
				got = parseCSV(t, body)
				for i := range want { // what the CSV cannot tell apart
					if want[i].Labels == nil {
						want[i].Labels = []string{}
					}
				}
			} else {
				got = parseJSONL(t, body)
			}
			// Decoded, a task without values has {} where the store has nil.
			if d := cmp.Diff(want, got, cmpopts.IgnoreFields(task.Task{}, "Fields")); d != "" {
				t.Errorf("content (-want +got):\n%s\n%s", d, body)
			}
		})
	}
}

// parseCSV reads an export back into tasks, undoing the formula guard.
func parseCSV(t *testing.T, body []byte) []task.Task {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != "id,title,description,status,priority,due_at,owner_id,assignee_id,labels,created_at,updated_at,version,project" {
		t.Fatalf("header %v", recs)
	}
	var out []task.Task
	for _, r := range recs[1:] {
		var tk task.Task
		js := `{"id":"` + r[0] + `","project":` + quote(unguard(r[12])) + `,"title":` + quote(unguard(r[1])) + `,"description":` + quote(unguard(r[2])) +
			`,"status":"` + r[3] + `","priority":"` + r[4] + `","due_at":` + nullable(r[5]) + `,"owner_id":` + quote(r[6]) +
			`,"assignee_id":` + nullable(r[7]) + `,"labels":` + r[8] + `,"created_at":"` + r[9] + `","updated_at":"` + r[10] +
			`","version":` + r[11] + `}`
		if err := json.Unmarshal([]byte(js), &tk); err != nil {
			t.Fatalf("%v: %s", err, js)
		}
		// Not columns of the CSV: these tasks have the defaults.
		tk.RecurrenceTZ, tk.Reminders = task.DefaultRecurrenceTZ, []string{}
		out = append(out, tk)
	}
	return out
}

func unguard(s string) string {
	if strings.HasPrefix(s, "'=") {
		return s[1:]
	}
	return s
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

func nullable(s string) string {
	if s == "" {
		return "null"
	}
	return quote(s)
}

func parseJSONL(t *testing.T, body []byte) []task.Task {
	t.Helper()
	var out []task.Task
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var tk task.Task
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tk); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		out = append(out, tk)
	}
	return out
}

// The formula guard is visible in the raw CSV.
func TestExportGuardsFormulas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	exportFixture(t, e)
	tok := e.token(t, "alice", auth.RoleMember)
	id := e.request(t, tok, `{"kind":"tasks_export","filters":{"status":["done"]}}`)
	e.build(t, id)
	_, _, body := e.call(t, "GET", "/reports/"+id.String()+"/content", tok, "")
	if !strings.Contains(string(body), `'=HYPERLINK(""http://evil"")`) {
		t.Errorf("formula not neutralised:\n%s", body)
	}
}

// A summary counts by status and priority, the overdue tasks, and what was
// created and completed each day, over the requester's tasks only.
func TestSummaryContent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	past := ptr(day("2020-01-01T00:00:00Z"))
	insert(t, e.db,
		row{title: "a", status: "todo", priority: "low", owner: "alice", created: day("2026-01-01T08:00:00Z"), due: past},
		row{title: "b", status: "done", priority: "high", owner: "alice", created: day("2026-01-01T23:59:59Z"),
			completed: ptr(day("2026-01-03T12:00:00Z")), due: past},
		row{title: "c", status: "blocked", priority: "high", owner: "bob", assignee: ptr("alice"), created: day("2026-01-02T00:00:00Z")},
		row{title: "d", status: "done", priority: "urgent", owner: "bob", created: day("2026-01-02T05:00:00Z"),
			completed: ptr(day("2026-01-02T06:00:00Z"))},
		row{title: "e", status: "cancelled", priority: "low", owner: "alice", created: day("2025-12-31T23:00:00Z"), due: past},
	)
	type doc struct {
		Scope      string                    `json:"scope"`
		Period     report.Period             `json:"period"`
		Total      int64                     `json:"total"`
		ByStatus   map[string]int64          `json:"by_status"`
		ByPriority map[string]int64          `json:"by_priority"`
		ByBoth     map[string]map[string]int `json:"by_status_and_priority"`
		ByProject  map[string]map[string]int `json:"by_project"`
		Overdue    int64                     `json:"overdue"`
		PerDay     []struct {
			Date               string
			Created, Completed int64
		} `json:"per_day"`
	}
	tok := e.token(t, "alice", auth.RoleMember)
	id := e.request(t, tok, `{"kind":"status_summary","period":{"from":"2026-01-01","to":"2026-01-03"}}`)
	e.build(t, id)
	v := e.view(t, tok, id)
	status, h, body := e.call(t, "GET", v.ContentURL, tok, "")
	if status != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", status, h)
	}
	var got doc
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Scope != "own" || got.Total != 4 || got.Overdue != 1 || got.Period != (report.Period{From: "2026-01-01", To: "2026-01-03"}) {
		t.Errorf("summary %s", body)
	}
	wantStatus := map[string]int64{"todo": 1, "in_progress": 0, "blocked": 1, "done": 1, "cancelled": 1}
	wantPriority := map[string]int64{"low": 2, "medium": 0, "high": 2, "urgent": 0}
	if d := cmp.Diff(wantStatus, got.ByStatus); d != "" {
		t.Errorf("by status (-want +got):\n%s", d)
	}
	if d := cmp.Diff(wantPriority, got.ByPriority); d != "" {
		t.Errorf("by priority (-want +got):\n%s", d)
	}
	if got.ByBoth["blocked"]["high"] != 1 || got.ByBoth["todo"]["urgent"] != 0 || len(got.ByBoth) != 5 {
		t.Errorf("by both %v", got.ByBoth)
	}
	wantProjects := map[string]map[string]int{
		"~alice": {"todo": 1, "in_progress": 0, "blocked": 0, "done": 1, "cancelled": 1},
		"~bob":   {"todo": 0, "in_progress": 0, "blocked": 1, "done": 0, "cancelled": 0}, // c, assigned to alice
	}
	if d := cmp.Diff(wantProjects, got.ByProject); d != "" {
		t.Errorf("by project (-want +got):\n%s", d)
	}
	wantDays := `[{"Date":"2026-01-01","Created":2,"Completed":0},{"Date":"2026-01-02","Created":1,"Completed":0},{"Date":"2026-01-03","Created":0,"Completed":1}]`
	gotDays, _ := json.Marshal(got.PerDay)
	if string(gotDays) != wantDays {
		t.Errorf("per day %s, want %s", gotDays, wantDays)
	}
}

// The whole life of a report through the API and the sink: pending, then
// succeeded; content refused until then; report.completed emitted once,
// valid by its schema, however often the request is redelivered.
func TestReportLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	exportFixture(t, e)
	alice := e.token(t, "alice", auth.RoleMember)
	id := e.request(t, alice, `{"kind":"tasks_export"}`)

	if v := e.view(t, alice, id); v.Status != report.StatusPending || v.ContentURL != "" {
		t.Errorf("before the build: %+v", v)
	}
	if status, _, body := e.call(t, "GET", "/reports/"+id.String()+"/content", alice, ""); status != http.StatusConflict {
		t.Errorf("content before the build: %d %s", status, body)
	}
	requested := e.outboxEvents(t, events.ReportRequested)
	if len(requested) != 1 {
		t.Fatalf("%d report.requested events", len(requested))
	}
	if err := eventstest.Validate(events.ReportRequested, requested[0].Data()); err != nil {
		t.Error(err)
	}
	for range 3 {
		if status, body := e.deliver(t, requested[0]); status != http.StatusNoContent {
			t.Fatalf("delivery: %d %s", status, body)
		}
	}
	completed := e.outboxEvents(t, events.ReportCompleted)
	if len(completed) != 1 {
		t.Fatalf("%d report.completed events, want 1", len(completed))
	}
	if err := eventstest.Validate(events.ReportCompleted, completed[0].Data()); err != nil {
		t.Error(err)
	}
	var data events.ReportCompletedData
	if err := json.Unmarshal(completed[0].Data(), &data); err != nil {
		t.Fatal(err)
	}
	if data != (events.ReportCompletedData{ReportID: id, Kind: "tasks_export", RequestedBy: "alice", Status: "succeeded", Rows: 3}) {
		t.Errorf("report.completed %+v", data)
	}
	v := e.view(t, alice, id)
	if v.Status != report.StatusSucceeded || v.StartedAt == nil || v.FinishedAt == nil || *v.Rows != 3 {
		t.Errorf("after: %+v", v)
	}
}

// Only the requester reads a report; anyone else is told it does not exist.
func TestReportAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	exportFixture(t, e)
	alice := e.token(t, "alice", auth.RoleMember)
	id := e.request(t, alice, `{"kind":"tasks_export"}`)
	e.build(t, id)
	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"requester", "GET", "/reports/" + id.String(), alice, 200},
		{"requester's content", "GET", "/reports/" + id.String() + "/content", alice, 200},
		{"another member", "GET", "/reports/" + id.String(), e.token(t, "bob", auth.RoleMember), 404},
		{"another member's download", "GET", "/reports/" + id.String() + "/content", e.token(t, "bob", auth.RoleMember), 404},
		{"a manager is not the requester", "GET", "/reports/" + id.String() + "/content", e.token(t, "mgr", auth.RoleManager), 404},
		{"unknown", "GET", "/reports/" + uuid.NewString(), alice, 404},
		{"malformed id", "GET", "/reports/nope", alice, 404},
		{"no token", "GET", "/reports/" + id.String(), "", 401},
		{"no task role", "POST", "/reports", e.token(t, "eve", ""), 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := ""
			if tc.method == "POST" {
				body = `{"kind":"tasks_export"}`
			}
			status, h, b := e.call(t, tc.method, tc.path, tc.token, body)
			if status != tc.want {
				t.Fatalf("%d, want %d: %s", status, tc.want, b)
			}
			if status >= 400 && h.Get("Content-Type") != "application/problem+json" {
				t.Errorf("not a problem: %v %s", h, b)
			}
		})
	}
}

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	tests := []struct {
		name, body string
		want       int
		field      string
	}{
		{"not JSON", `{`, 400, ""},
		{"unknown field", `{"kind":"tasks_export","colour":"red"}`, 400, ""},
		{"no kind", `{}`, 422, "kind"},
		{"unknown kind", `{"kind":"pie_chart"}`, 422, "kind"},
		{"export as json", `{"kind":"tasks_export","format":"json"}`, 422, "format"},
		{"summary as csv", `{"kind":"status_summary","format":"csv"}`, 422, "format"},
		{"summary as xlsx", `{"kind":"status_summary","format":"xlsx"}`, 422, "format"},
		{"export as png", `{"kind":"tasks_export","format":"png"}`, 422, "format"},
		{"export as svg", `{"kind":"tasks_export","format":"svg"}`, 422, "format"},
		{"unknown format", `{"kind":"tasks_export","format":"xls"}`, 422, "format"},
		{"export with a period", `{"kind":"tasks_export","period":{"from":"2026-01-01","to":"2026-01-02"}}`, 422, "period"},
		{"period backwards", `{"kind":"status_summary","period":{"from":"2026-02-01","to":"2026-01-01"}}`, 422, "period"},
		{"period too long", `{"kind":"status_summary","period":{"from":"2020-01-01","to":"2026-01-01"}}`, 422, "period"},
		{"period not dates", `{"kind":"status_summary","period":{"from":"yesterday","to":"today"}}`, 422, "period"},
		{"unknown status", `{"kind":"tasks_export","filters":{"status":["open"]}}`, 422, "filters.status"},
		{"blank label", `{"kind":"tasks_export","filters":{"label":"  "}}`, 422, "filters.label"},
		{"wrong type", `{"kind":"tasks_export","filters":{"status":"done"}}`, 422, "filters.status"},
		{"bad due date", `{"kind":"tasks_export","filters":{"due_before":"soon"}}`, 422, "filters"},
		{"summary, default period", `{"kind":"status_summary"}`, 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, _, b := e.call(t, "POST", "/reports", e.token(t, "u-"+tc.name, auth.RoleMember), tc.body)
			if status != tc.want {
				t.Fatalf("%d, want %d: %s", status, tc.want, b)
			}
			if tc.field != "" && !strings.Contains(string(b), `"field":"`+tc.field+`"`) {
				t.Errorf("no error for %s: %s", tc.field, b)
			}
		})
	}
	// The limit on unfinished reports (3 in these tests) per requester.
	tok := e.token(t, "busy", auth.RoleMember)
	for range 3 {
		e.request(t, tok, `{"kind":"tasks_export"}`)
	}
	if status, h, b := e.call(t, "POST", "/reports", tok, `{"kind":"tasks_export"}`); status != 429 || h.Get("Retry-After") == "" {
		t.Errorf("fourth unfinished report: %d %s", status, b)
	}
}

// TestReportProjects: a report covers the projects its requester held a
// role in when asking, narrowed by filters.project, and is built from that
// snapshot: a role given afterwards does not widen it.
func TestReportProjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	if _, err := e.db.Primary.Exec(t.Context(), `INSERT INTO projects (key, name, created_by) VALUES ('red', 'Red', 'x'), ('blue', 'Blue', 'x')`); err != nil {
		t.Fatal(err)
	}
	at := day("2026-01-01T08:00:00Z")
	insert(t, e.db,
		row{title: "red one", status: "todo", priority: "low", owner: "zed", project: "red", created: at},
		row{title: "red two", status: "done", priority: "low", owner: "zed", project: "red", created: at},
		row{title: "blue", status: "todo", priority: "low", owner: "zed", project: "blue", created: at},
		row{title: "blue, mine", status: "todo", priority: "low", owner: "zed", project: "blue", assignee: ptr("alice"), created: at},
		row{title: "personal", status: "todo", priority: "low", owner: "alice", created: at},
	)
	claims := e.issuer.Claims("alice", auth.RoleMember)
	claims["groups"] = []string{"/projects/red/viewer"}
	tok := e.issuer.Sign(t, claims)
	titles := func(body string) []string {
		t.Helper()
		id := e.request(t, tok, body)
		if _, err := e.db.Primary.Exec(t.Context(), `INSERT INTO project_members (project, subject, role, added_by) VALUES ('blue', 'alice', 'viewer', 'x') ON CONFLICT DO NOTHING`); err != nil {
			t.Fatal(err)
		}
		e.build(t, id)
		_, _, content := e.call(t, "GET", "/reports/"+id.String()+"/content", tok, "")
		var out []string
		for _, tk := range parseJSONL(t, content) {
			out = append(out, tk.Project+":"+tk.Title)
		}
		slices.Sort(out)
		if _, err := e.db.Primary.Exec(t.Context(), `DELETE FROM project_members WHERE subject = 'alice'`); err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name, body string
		want       []string
	}{
		{"every project visible when asking", `{"kind":"tasks_export","format":"jsonl"}`, []string{"blue:blue, mine", "red:red one", "red:red two", "~alice:personal"}},
		{"one project", `{"kind":"tasks_export","format":"jsonl","filters":{"project":"red","status":["todo"]}}`, []string{"red:red one"}},
		{"a project not seen: only what is assigned", `{"kind":"tasks_export","format":"jsonl","filters":{"project":"blue"}}`, []string{"blue:blue, mine"}},
	}
	for _, tt := range tests {
		if got := titles(tt.body); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
	if status, _, body := e.call(t, "POST", "/reports", tok, `{"kind":"tasks_export","filters":{"project":"Not A Key"}}`); status != 422 {
		t.Errorf("bad project filter: %d %s", status, body)
	}
}
