package report_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/report"
)

// analyticsDoc is what a project_analytics json holds, as a client reads
// it.
type analyticsDoc struct {
	Kind      string        `json:"kind"`
	Scope     string        `json:"scope"`
	Project   string        `json:"project"`
	Period    report.Period `json:"period"`
	Completed int64         `json:"completed"`
	CycleTime cycleDoc      `json:"cycle_time"`
	PerWeek   []weekDoc     `json:"per_week"`
	Open      openDoc       `json:"open"`
	Overdue   int64         `json:"overdue"`
}

type cycleDoc struct {
	Tasks       int64    `json:"tasks"`
	MedianHours *float64 `json:"median_hours"`
}

type weekDoc struct {
	Week, From, To string
	Completed      int64    `json:"completed"`
	CycleTime      cycleDoc `json:"cycle_time"`
}

type openDoc struct {
	Total      int64            `json:"total"`
	ByStatus   map[string]int64 `json:"by_status"`
	ByAssignee []struct {
		Assignee *string          `json:"assignee"`
		Total    int64            `json:"total"`
		ByStatus map[string]int64 `json:"by_status"`
	} `json:"by_assignee"`
	Others struct {
		Assignees int64            `json:"assignees"`
		Total     int64            `json:"total"`
		ByStatus  map[string]int64 `json:"by_status"`
	} `json:"others"`
}

// history adds task id's status changes to task_activity: [at, old, new]
// each, old "" for the task's creation.
func history(t *testing.T, e *env, id uuid.UUID, changes ...[3]string) {
	t.Helper()
	for _, c := range changes {
		old, kind := `"`+c[1]+`"`, "updated"
		if c[1] == "" {
			old, kind = "null", "created"
		}
		const q = `
INSERT INTO task_activity (id, task_id, at, actor, kind, changes)
VALUES ($1, $2, $3, 'x', $4, $5)`
		body := `[{"field":"status","old":` + old + `,"new":"` + c[2] + `"}]`
		if _, err := e.db.Primary.Exec(t.Context(), q, uuid.Must(uuid.NewV7()), id, day(c[0]), kind, body); err != nil {
			t.Fatal(err)
		}
	}
}

func hours(h float64) *float64 { return &h }

// A fixed history of project web over two ISO weeks (2026-W02 and W03):
// the throughput and the median cycle times per week and in all are the
// ones worked out by hand below, counting from the first move to
// in_progress of the task's last cycle; open work by assignee and the
// overdue count are now's. Another project's tasks count nowhere.
func TestProjectAnalytics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	if _, err := e.db.Primary.Exec(t.Context(), `
INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x'), ('other', 'Other', 'x'), ('empty', 'Empty', 'x');
INSERT INTO project_members (project, subject, role, added_by) VALUES ('web', 'vera', 'viewer', 'x'), ('other', 'olga', 'member', 'x'), ('empty', 'vera', 'viewer', 'x')`); err != nil {
		t.Fatal(err)
	}
	created := day("2026-01-01T00:00:00Z")
	done := func(at string) row {
		return row{title: "t", status: "done", priority: "low", owner: "x", project: "web", created: created, completed: ptr(day(at))}
	}
	open := func(status, assignee string) row {
		r := row{title: "t", status: status, priority: "low", owner: "x", project: "web", created: created}
		if assignee != "" {
			r.assignee = ptr(assignee)
		}
		return r
	}
	ids := insert(t, e.db,
		done("2026-01-05T22:00:00Z"), // 0: 12 h, W02
		done("2026-01-08T00:00:00Z"), // 1: 72 h from its first in_progress, blocked between, W02
		done("2026-01-07T00:00:00Z"), // 2: todo to done, no start: throughput only, W02
		done("2026-01-12T00:00:00Z"), // 3: 240 h, started before the period, W03
		done("2026-01-13T00:00:00Z"), // 4: reopened; 48 h of its second cycle, W03
		done("2026-01-14T06:00:00Z"), // 5: created in progress, 6 h, W03
		done("2026-01-20T00:00:00Z"), // 6: after the period
		open("todo", "alice"),        // 7: done in the period, reopened since
		open("in_progress", "bob"),   // 8: overdue
		open("blocked", ""),          // 9
		open("todo", "bob"),          // 10
		open("cancelled", "bob"),     // 11: not open
		row{title: "t", status: "done", priority: "low", owner: "x", project: "other", created: created, // 12: another project
			completed: ptr(day("2026-01-06T00:00:00Z")), assignee: ptr("alice")},
		row{title: "t", status: "todo", priority: "low", owner: "x", project: "other", created: created, assignee: ptr("olga")}, // 13
	)
	history(t, e, ids[0], [3]string{"2026-01-05T10:00:00Z", "todo", "in_progress"}, [3]string{"2026-01-05T22:00:00Z", "in_progress", "done"})
	history(t, e, ids[1], [3]string{"2026-01-05T00:00:00Z", "todo", "in_progress"}, [3]string{"2026-01-06T00:00:00Z", "in_progress", "blocked"},
		[3]string{"2026-01-07T00:00:00Z", "blocked", "in_progress"}, [3]string{"2026-01-08T00:00:00Z", "in_progress", "done"})
	history(t, e, ids[2], [3]string{"2026-01-07T00:00:00Z", "todo", "done"})
	history(t, e, ids[3], [3]string{"2026-01-02T00:00:00Z", "todo", "in_progress"}, [3]string{"2026-01-12T00:00:00Z", "in_progress", "done"})
	history(t, e, ids[4], [3]string{"2026-01-01T00:00:00Z", "todo", "in_progress"}, [3]string{"2026-01-03T00:00:00Z", "in_progress", "done"},
		[3]string{"2026-01-10T00:00:00Z", "done", "todo"}, [3]string{"2026-01-11T00:00:00Z", "todo", "in_progress"},
		[3]string{"2026-01-13T00:00:00Z", "in_progress", "done"})
	history(t, e, ids[5], [3]string{"2026-01-14T00:00:00Z", "", "in_progress"}, [3]string{"2026-01-14T06:00:00Z", "in_progress", "done"})
	history(t, e, ids[6], [3]string{"2026-01-19T00:00:00Z", "todo", "in_progress"}, [3]string{"2026-01-20T00:00:00Z", "in_progress", "done"})
	history(t, e, ids[7], [3]string{"2026-01-06T00:00:00Z", "todo", "done"}, [3]string{"2026-01-09T00:00:00Z", "done", "todo"})
	history(t, e, ids[12], [3]string{"2026-01-05T00:00:00Z", "todo", "in_progress"}, [3]string{"2026-01-06T00:00:00Z", "in_progress", "done"})
	if _, err := e.db.Primary.Exec(t.Context(), `UPDATE tasks SET due_at = '2026-01-01' WHERE id = $1`, ids[8]); err != nil {
		t.Fatal(err)
	}

	zero := map[string]int64{"todo": 0, "in_progress": 0, "blocked": 0}
	web := analyticsDoc{
		Kind: "project_analytics", Project: "web", Period: report.Period{From: "2026-01-05", To: "2026-01-18"},
		Completed: 6, CycleTime: cycleDoc{Tasks: 5, MedianHours: hours(48)},
		PerWeek: []weekDoc{
			{Week: "2026-W02", From: "2026-01-05", To: "2026-01-11", Completed: 3, CycleTime: cycleDoc{Tasks: 2, MedianHours: hours(42)}},
			{Week: "2026-W03", From: "2026-01-12", To: "2026-01-18", Completed: 3, CycleTime: cycleDoc{Tasks: 3, MedianHours: hours(48)}},
		},
		Overdue: 1,
	}
	web.Open.Total = 4
	web.Open.ByStatus = map[string]int64{"todo": 2, "in_progress": 1, "blocked": 1}
	web.Open.Others.ByStatus = zero
	json.Unmarshal([]byte(`[
	  {"assignee": "bob", "total": 2, "by_status": {"todo": 1, "in_progress": 1, "blocked": 0}},
	  {"assignee": null, "total": 1, "by_status": {"todo": 0, "in_progress": 0, "blocked": 1}},
	  {"assignee": "alice", "total": 1, "by_status": {"todo": 1, "in_progress": 0, "blocked": 0}}]`), &web.Open.ByAssignee)

	empty := analyticsDoc{Kind: "project_analytics", Project: "empty", Period: report.Period{From: "2026-01-07", To: "2026-01-13"},
		PerWeek: []weekDoc{{Week: "2026-W02", From: "2026-01-07", To: "2026-01-11"}, {Week: "2026-W03", From: "2026-01-12", To: "2026-01-13"}}}
	empty.Open.ByStatus, empty.Open.Others.ByStatus = zero, zero
	empty.Open.ByAssignee = web.Open.ByAssignee[:0]

	tests := []struct {
		name, subject string
		role          auth.Role
		body          string
		want          analyticsDoc
		scope         string
	}{
		{"an admin", "ada", auth.RoleAdmin, `{"kind":"project_analytics","project":"web","period":{"from":"2026-01-05","to":"2026-01-18"}}`, web, "all"},
		{"a viewer of the project", "vera", auth.RoleMember, `{"kind":"project_analytics","project":"web","period":{"from":"2026-01-05","to":"2026-01-18"}}`, web, "own"},
		{"an empty project", "vera", auth.RoleMember, `{"kind":"project_analytics","project":"empty","format":"json","period":{"from":"2026-01-07","to":"2026-01-13"}}`, empty, "own"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := e.token(t, tc.subject, tc.role)
			id := e.request(t, tok, tc.body)
			e.build(t, id)
			v := e.view(t, tok, id)
			if v.Status != report.StatusSucceeded || v.ContentType != "application/json" || v.Project != tc.want.Project {
				t.Fatalf("report %+v", v)
			}
			resp, body := httpxtest.Call(t, nil, "GET", e.url+v.ContentURL, tok, "")
			apispec.Check(t, "GET", v.ContentURL, resp, body)
			var got analyticsDoc
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			tc.want.Scope = tc.scope
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("analytics (-want +got):\n%s\n%s", diff, body)
			}
		})
	}
}

// Only whoever the list shows a project's tasks to may ask for its
// analytics; anyone else, a member of another project or an assignee of
// one of its tasks alike, gets 404, as for the project itself, whether it
// exists or not. A bad request is a 422 naming its fields.
func TestProjectAnalyticsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	if _, err := e.db.Primary.Exec(t.Context(), `
INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x'), ('other', 'Other', 'x');
INSERT INTO project_members (project, subject, role, added_by) VALUES ('other', 'olga', 'maintainer', 'x')`); err != nil {
		t.Fatal(err)
	}
	insert(t, e.db, row{title: "t", status: "todo", priority: "low", owner: "x", project: "web", created: day("2026-01-01T00:00:00Z"), assignee: ptr("sam")})
	const period = `"period":{"from":"2026-01-05","to":"2026-01-18"}`
	tests := []struct {
		name, subject string
		role          auth.Role
		body          string
		status        int
		fields        []string
	}{
		{"a member of another project", "olga", auth.RoleMember, `{"kind":"project_analytics","project":"web",` + period + `}`, 404, nil},
		{"an assignee of one of its tasks", "sam", auth.RoleMember, `{"kind":"project_analytics","project":"web",` + period + `}`, 404, nil},
		{"a project that does not exist, to an admin", "ada", auth.RoleAdmin, `{"kind":"project_analytics","project":"nope",` + period + `}`, 404, nil},
		{"a project that does not exist, to a member", "olga", auth.RoleMember, `{"kind":"project_analytics","project":"nope",` + period + `}`, 404, nil},
		{"no project", "ada", auth.RoleAdmin, `{"kind":"project_analytics",` + period + `}`, 422, []string{"project"}},
		{"not a project key", "ada", auth.RoleAdmin, `{"kind":"project_analytics","project":"a b",` + period + `}`, 422, []string{"project"}},
		{"filters", "ada", auth.RoleAdmin, `{"kind":"project_analytics","project":"web","filters":{"status":["todo"]},` + period + `}`, 422, []string{"filters"}},
		{"xlsx", "ada", auth.RoleAdmin, `{"kind":"project_analytics","project":"web","format":"xlsx",` + period + `}`, 422, []string{"format"}},
		{"367 days", "ada", auth.RoleAdmin, `{"kind":"project_analytics","project":"web","period":{"from":"2025-01-01","to":"2026-01-02"}}`, 422, []string{"period"}},
		{"a project on a summary", "ada", auth.RoleAdmin, `{"kind":"status_summary","project":"web"}`, 422, []string{"project"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := e.call(t, "POST", "/reports", e.token(t, tc.subject, tc.role), tc.body)
			if status != tc.status {
				t.Fatalf("%d %s, want %d", status, body, tc.status)
			}
			var p struct {
				Errors []struct{ Field string } `json:"errors"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatal(err)
			}
			var fields []string
			for _, fe := range p.Errors {
				fields = append(fields, fe.Field)
			}
			if diff := cmp.Diff(tc.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%s", diff, body)
			}
		})
	}
}

// The longest period, 366 days from a Sunday, overlaps 54 ISO weeks, the
// first and last of one day each; the charts of it draw.
func TestProjectAnalyticsYear(t *testing.T) {
	t.Parallel()
	e := newEnv(t, smallChunks)
	if _, err := e.db.Primary.Exec(t.Context(), `INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x')`); err != nil {
		t.Fatal(err)
	}
	tok := e.token(t, "ada", auth.RoleAdmin)
	for _, format := range []string{"json", "svg", "png"} {
		id := e.request(t, tok, `{"kind":"project_analytics","project":"web","format":"`+format+`","period":{"from":"2023-01-01","to":"2024-01-01"}}`)
		e.build(t, id)
		vresp, vbody := httpxtest.Call(t, nil, "GET", e.url+"/reports/"+id.String(), tok, "")
		apispec.Check(t, "GET", "/reports/"+id.String(), vresp, vbody)
		v := e.view(t, tok, id)
		if v.Status != report.StatusSucceeded || v.Project != "web" {
			t.Fatalf("%s: %+v", format, v)
		}
		resp, body := httpxtest.Call(t, nil, "GET", e.url+v.ContentURL, tok, "")
		apispec.Check(t, "GET", v.ContentURL, resp, body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Disposition") != `attachment; filename="project_analytics-`+id.String()+`.`+format+`"` {
			t.Fatalf("%s: %d %v", format, resp.StatusCode, resp.Header)
		}
		switch format {
		case "json":
			var got analyticsDoc
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			first, last := got.PerWeek[0], got.PerWeek[len(got.PerWeek)-1]
			if len(got.PerWeek) != 54 || first != (weekDoc{Week: "2022-W52", From: "2023-01-01", To: "2023-01-01"}) ||
				last != (weekDoc{Week: "2024-W01", From: "2024-01-01", To: "2024-01-01"}) {
				t.Errorf("%d weeks, first %+v, last %+v", len(got.PerWeek), first, last)
			}
		case "svg":
			for _, want := range []string{"Project web", "2023-01-01 to 2024-01-01 (UTC days)", "Throughput", "Median cycle time", "no open tasks", "W52"} {
				if !strings.Contains(string(body), want) {
					t.Errorf("no %q in the SVG", want)
				}
			}
		}
	}
}
