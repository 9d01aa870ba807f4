package taskapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	due := "2026-12-24T18:00:00Z"
	tests := []struct {
		name   string
		body   any
		ctype  string
		as     string
		status int
		slug   string   // problem type slug on failure
		fields []string // invalid fields named in a 422
		detail string   // in the first field's detail, when set
		check  func(t *testing.T, got task.Task)
	}{
		{name: "minimal gets defaults", body: map[string]any{"title": "Write docs"}, as: carol, status: 201,
			check: func(t *testing.T, got task.Task) {
				want := task.Task{Project: "~" + carol, Title: "Write docs", Status: task.StatusTodo, Priority: task.PriorityMedium, OwnerID: carol, Labels: []string{},
					RecurrenceTZ: "UTC", Reminders: []string{}, Fields: map[string]json.RawMessage{}, Version: 1}
				got.ID, got.CreatedAt, got.UpdatedAt = [16]byte{}, time.Time{}, time.Time{}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("task (-want +got):\n%s", d)
				}
			}},
		{name: "every field", as: bob, status: 201,
			body: map[string]any{"title": "Ship", "description": "all of it", "status": "in_progress", "priority": "urgent",
				"due_at": due, "assignee_id": dave, "labels": []string{"release", "q4"}},
			check: func(t *testing.T, got task.Task) {
				if got.Status != task.StatusInProgress || got.Priority != task.PriorityUrgent || got.OwnerID != bob ||
					got.AssigneeID == nil || *got.AssigneeID != dave || got.DueAt == nil || got.DueAt.Format(time.RFC3339) != due ||
					!cmp.Equal(got.Labels, []string{"release", "q4"}) || got.Description != "all of it" {
					t.Errorf("stored %+v", got)
				}
			}},
		{name: "weekly with reminders", as: carol, status: 201,
			body: map[string]any{"title": "Standup notes", "due_at": "2027-03-22T08:00:00Z", "recurrence": "FREQ=WEEKLY;BYDAY=MO",
				"recurrence_tz": "Europe/Berlin", "reminders": []string{"-p1dt0h", "-PT15M"}},
			check: func(t *testing.T, got task.Task) {
				if got.Recurrence == nil || *got.Recurrence != "FREQ=WEEKLY;BYDAY=MO" || got.RecurrenceTZ != "Europe/Berlin" ||
					!cmp.Equal(got.Reminders, []string{"-P1D", "-PT15M"}) || got.SeriesID != nil {
					t.Errorf("stored %+v", got)
				}
			}},
		{name: "bad rule part", body: map[string]any{"title": "x", "due_at": due, "recurrence": "FREQ=WEEKLY;BYDAY=XX"}, as: carol, status: 422, slug: "validation",
			fields: []string{"recurrence"}, detail: `part "BYDAY=XX"`},
		{name: "minutely", body: map[string]any{"title": "x", "due_at": due, "recurrence": "FREQ=MINUTELY"}, as: carol, status: 422, slug: "validation",
			fields: []string{"recurrence"}, detail: "HOURLY or longer"},
		{name: "recurrence without due_at", body: map[string]any{"title": "x", "recurrence": "FREQ=DAILY"}, as: carol, status: 422, slug: "validation", fields: []string{"due_at"}},
		{name: "unknown zone", body: map[string]any{"title": "x", "due_at": due, "recurrence": "FREQ=DAILY", "recurrence_tz": "Europe/Atlantis"}, as: carol, status: 422, slug: "validation", fields: []string{"recurrence_tz"}},
		{name: "positive reminder", body: map[string]any{"title": "x", "due_at": due, "reminders": []string{"P1D"}}, as: carol, status: 422, slug: "validation", fields: []string{"reminders[0]"}, detail: "negative"},
		{name: "reminders without due_at", body: map[string]any{"title": "x", "reminders": []string{"-P1D"}}, as: carol, status: 422, slug: "validation", fields: []string{"reminders"}},
		{name: "series_id is the server's", body: map[string]any{"title": "x", "series_id": "0192f0c4-1d2e-7a3b-8c4d-5e6f70819203"}, as: carol, status: 422, slug: "validation", fields: []string{"series_id"}},
		{name: "malformed json", body: `{"title": "x"`, as: carol, status: 400, slug: "bad-request"},
		{name: "not an object", body: `["title"]`, as: carol, status: 400, slug: "bad-request"},
		{name: "two documents", body: `{"title":"a"} {"title":"b"}`, as: carol, status: 400, slug: "bad-request"},
		{name: "unknown field", body: map[string]any{"title": "x", "colour": "red"}, as: carol, status: 400, slug: "bad-request"},
		{name: "read-only field", body: map[string]any{"title": "x", "owner_id": alice}, as: carol, status: 422, slug: "validation", fields: []string{"owner_id"}},
		{name: "title missing", body: map[string]any{"description": "x"}, as: carol, status: 422, slug: "validation", fields: []string{"title"}},
		{name: "title blank", body: map[string]any{"title": "   "}, as: carol, status: 422, slug: "validation", fields: []string{"title"}},
		{name: "title too long", body: map[string]any{"title": strings.Repeat("é", 201)}, as: carol, status: 422, slug: "validation", fields: []string{"title"}},
		{name: "title at limit", body: map[string]any{"title": strings.Repeat("é", 200)}, as: carol, status: 201},
		{name: "title wrong type", body: map[string]any{"title": 5}, as: carol, status: 422, slug: "validation", fields: []string{"title"}},
		{name: "description too long", body: map[string]any{"title": "x", "description": strings.Repeat("a", 10_001)}, as: carol, status: 422, slug: "validation", fields: []string{"description"}},
		{name: "NUL in description", body: map[string]any{"title": "x", "description": "a\x00b"}, as: carol, status: 422, slug: "validation", fields: []string{"description"}},
		{name: "bad status and priority", body: map[string]any{"title": "x", "status": "later", "priority": "p0"}, as: carol, status: 422, slug: "validation", fields: []string{"status", "priority"}},
		{name: "null status", body: map[string]any{"title": "x", "status": nil}, as: carol, status: 422, slug: "validation", fields: []string{"status"}},
		{name: "bad due_at", body: map[string]any{"title": "x", "due_at": "tomorrow"}, as: carol, status: 422, slug: "validation", fields: []string{"due_at"}},
		{name: "blank assignee", body: map[string]any{"title": "x", "assignee_id": ""}, as: carol, status: 422, slug: "validation", fields: []string{"assignee_id"}},
		{name: "too many labels", body: map[string]any{"title": "x", "labels": strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u", ",")}, as: carol, status: 422, slug: "validation", fields: []string{"labels"}},
		{name: "duplicate and long label", body: map[string]any{"title": "x", "labels": []string{"a", "a", strings.Repeat("l", 51)}}, as: carol, status: 422, slug: "validation", fields: []string{"labels[1]", "labels[2]"}},
		{name: "wrong content type", body: `title=x`, ctype: "application/x-www-form-urlencoded", as: carol, status: 415, slug: "unsupported-media-type"},
		{name: "body over 1 MiB", body: `{"title":"x","description":"` + strings.Repeat("a", 1<<20) + `"}`, as: carol, status: 413, slug: "too-large"},
		{name: "no token", body: map[string]any{"title": "x"}, status: 401, slug: "unauthorized"},
		{name: "no role", body: map[string]any{"title": "x"}, as: eve, status: 403, slug: "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.rows()
			r := e.do(req{method: "POST", path: "/tasks", as: tc.as, body: tc.body, contentType: tc.ctype})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != http.StatusCreated {
				p := r.problem(t)
				if p.Type != httpx.ProblemBase+tc.slug {
					t.Errorf("type %q, want slug %q", p.Type, tc.slug)
				}
				var fields []string
				for _, f := range p.Errors {
					fields = append(fields, f.Field)
				}
				if !cmp.Equal(fields, tc.fields) {
					t.Errorf("invalid fields %v, want %v", fields, tc.fields)
				}
				if tc.detail != "" && (len(p.Errors) == 0 || !strings.Contains(p.Errors[0].Detail, tc.detail)) {
					t.Errorf("errors %+v, want the first to say %q", p.Errors, tc.detail)
				}
				// These cases run one after another (no t.Parallel) so the count is exact.
				if after := e.rows(); after != before {
					t.Errorf("a rejected request changed the table: %d rows, was %d", after, before)
				}
				return
			}
			got := r.task(t)
			if loc := r.header.Get("Location"); loc != "/tasks/"+got.ID.String() {
				t.Errorf("Location %q", loc)
			}
			if et := r.header.Get("ETag"); et != `"1"` {
				t.Errorf("ETag %q, want \"1\"", et)
			}
			if got.ID.Version() != 7 {
				t.Errorf("id %s is UUID version %d, want 7", got.ID, got.ID.Version())
			}
			if tc.check != nil {
				tc.check(t, got)
			}
			// What was answered is what is stored.
			g := e.do(req{method: "GET", path: "/tasks/" + got.ID.String(), as: tc.as})
			if d := cmp.Diff(got, g.task(t)); d != "" {
				t.Errorf("GET differs from the create reply (-create +get):\n%s", d)
			}
		})
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.create(carol, map[string]any{"title": "mine"})
	path := "/tasks/" + tk.ID.String()
	tests := []struct {
		name   string
		path   string
		as     string
		header map[string]string
		status int
	}{
		{"owner reads", path, carol, nil, 200},
		{"stranger member gets 404", path, dave, nil, 404},
		{"malformed id is 404", "/tasks/not-a-uuid", carol, nil, 404},
		{"unknown id is 404", "/tasks/0190f3a0-0000-7000-8000-000000000000", alice, nil, 404},
		{"if-none-match current is 304", path, carol, map[string]string{"If-None-Match": `"1"`}, 304},
		{"if-none-match weak is 304", path, carol, map[string]string{"If-None-Match": `W/"1"`}, 304},
		{"if-none-match old is 200", path, carol, map[string]string{"If-None-Match": `"0"`}, 200},
		{"bad token", path, "", map[string]string{"Authorization": "Bearer abc.def.ghi"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(req{method: "GET", path: tc.path, as: tc.as, header: tc.header})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			switch tc.status {
			case 200:
				if r.header.Get("ETag") != `"1"` || r.task(t).ID != tk.ID {
					t.Errorf("ETag %q body %s", r.header.Get("ETag"), r.body)
				}
			case 304:
				if len(r.body) != 0 || r.header.Get("ETag") != `"1"` {
					t.Errorf("304 with body %q etag %q", r.body, r.header.Get("ETag"))
				}
			case 401:
				if !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
			default:
				r.problem(t)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name    string
		body    any
		ctype   string
		ifMatch string
		status  int
		check   func(t *testing.T, before, after task.Task)
	}{
		{name: "merge patch sets and clears", ctype: "application/merge-patch+json",
			body:   map[string]any{"title": "renamed", "due_at": nil, "assignee_id": nil, "labels": []string{"x"}, "description": nil},
			status: 200,
			check: func(t *testing.T, before, after task.Task) {
				if after.Title != "renamed" || after.DueAt != nil || after.AssigneeID != nil || after.Description != "" ||
					!cmp.Equal(after.Labels, []string{"x"}) || after.Status != before.Status || after.Version != before.Version+1 ||
					!after.UpdatedAt.After(before.UpdatedAt) || !after.CreatedAt.Equal(before.CreatedAt) {
					t.Errorf("before %+v\nafter %+v", before, after)
				}
			}},
		{name: "plain json accepted", body: map[string]any{"status": "done"}, status: 200,
			check: func(t *testing.T, before, after task.Task) {
				if after.Status != task.StatusDone || after.Version != 2 {
					t.Errorf("after %+v", after)
				}
			}},
		{name: "no-op keeps version", body: map[string]any{"title": "original"}, status: 200,
			check: func(t *testing.T, before, after task.Task) {
				if after.Version != before.Version || !after.UpdatedAt.Equal(before.UpdatedAt) {
					t.Errorf("a patch that changes nothing bumped the version: %d → %d", before.Version, after.Version)
				}
			}},
		{name: "if-match current", body: map[string]any{"priority": "high"}, ifMatch: `"1"`, status: 200},
		{name: "if-match star", body: map[string]any{"priority": "high"}, ifMatch: `*`, status: 200},
		{name: "if-match stale", body: map[string]any{"priority": "high"}, ifMatch: `"7"`, status: 412},
		{name: "if-match weak never matches", body: map[string]any{"priority": "high"}, ifMatch: `W/"1"`, status: 412},
		{name: "null title", body: map[string]any{"title": nil}, status: 422},
		{name: "invalid value", body: map[string]any{"priority": "asap"}, status: 422},
		{name: "unknown field", body: map[string]any{"owner": "x"}, status: 400},
		{name: "version is read-only", body: map[string]any{"version": 9}, status: 422},
		{name: "malformed", body: `{`, status: 400},
		{name: "wrong content type", body: `{}`, ctype: "text/plain", status: 415},
		{name: "too large", body: `{"description":"` + strings.Repeat("a", 1<<20+10) + `"}`, status: 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := e.create(carol, map[string]any{"title": "original", "due_at": "2027-01-01T00:00:00Z", "assignee_id": dave, "description": "d"})
			path := "/tasks/" + before.ID.String()
			var h map[string]string
			if tc.ifMatch != "" {
				h = map[string]string{"If-Match": tc.ifMatch}
			}
			r := e.do(req{method: "PATCH", path: path, as: carol, body: tc.body, contentType: tc.ctype, header: h})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			stored := e.do(req{method: "GET", path: path, as: carol}).task(t)
			if tc.status != 200 {
				r.problem(t)
				if d := cmp.Diff(before, stored); d != "" {
					t.Errorf("a rejected patch changed the task:\n%s", d)
				}
				return
			}
			after := r.task(t)
			if d := cmp.Diff(after, stored); d != "" {
				t.Errorf("reply differs from stored (-reply +stored):\n%s", d)
			}
			if r.header.Get("ETag") != httpx.ETag(after.Version) {
				t.Errorf("ETag %q for version %d", r.header.Get("ETag"), after.Version)
			}
			if tc.check != nil {
				tc.check(t, before, after)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name    string
		ifMatch string
		status  int
	}{
		{"plain", "", 204},
		{"if-match current", `"1"`, 204},
		{"if-match stale", `"2"`, 412},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tk := e.create(carol, map[string]any{"title": "to go"})
			path := "/tasks/" + tk.ID.String()
			var h map[string]string
			if tc.ifMatch != "" {
				h = map[string]string{"If-Match": tc.ifMatch}
			}
			r := e.do(req{method: "DELETE", path: path, as: carol, header: h})
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			after := e.do(req{method: "GET", path: path, as: carol}).status
			want := map[int]int{204: 404, 412: 200}[tc.status]
			if after != want {
				t.Errorf("GET after delete: %d, want %d", after, want)
			}
			if tc.status == 204 {
				if again := e.do(req{method: "DELETE", path: path, as: carol}); again.status != 404 {
					t.Errorf("second delete: %d, want 404", again.status)
				}
			}
		})
	}
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"PUT", "/tasks/0190f3a0-0000-7000-8000-000000000000", 405},
		{"GET", "/nothing", 404},
	} {
		t.Run(fmt.Sprint(tc.method, tc.path), func(t *testing.T) {
			hr, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
			resp, err := e.srv.Client().Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// Entity tags are quoted (RFC 9110 8.8.3): a malformed If-Match or
// If-None-Match is a 400 that shows how to write it, never a 412 "has
// changed" for the current version (issue #15) or a silent 200; the task
// is left as it was. Well-formed lists keep working.
func TestPreconditionSyntax(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, method, header, value string
		status                      int
		detail                      string // in the 400's detail
	}{
		{"unquoted If-Match naming the current version", "PATCH", "If-Match", `1`, 400, `If-Match: "1"`},
		{"unquoted If-Match on delete", "DELETE", "If-Match", `1`, 400, `If-Match: "1"`},
		{"unquoted If-None-Match", "GET", "If-None-Match", `1`, 400, `If-None-Match: "1"`},
		{"unterminated tag", "PATCH", "If-Match", `"1`, 400, `If-Match: "3"`},
		{"star in a list", "DELETE", "If-Match", `*, "1"`, 400, `in double quotes`},
		{"lower-case weak prefix", "GET", "If-None-Match", `w/"1"`, 400, `If-None-Match: "3"`},
		{"junk after a tag", "PATCH", "If-Match", `"1" "2"`, 400, `comma list`},
		{"no tag at all", "PATCH", "If-Match", `,`, 400, `comma list`},
		{"space inside a tag", "GET", "If-None-Match", `"1 "`, 400, `in double quotes`},
		{"a list naming the current version", "PATCH", "If-Match", `"7", "1"`, 200, ""},
		{"empty list elements are allowed", "DELETE", "If-Match", ` ,"1", `, 204, ""},
		{"weak and strong in a list", "GET", "If-None-Match", `W/"0", "1"`, 304, ""},
		{"a comma inside a tag", "GET", "If-None-Match", `"1,2"`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tk := e.create(carol, map[string]any{"title": "guarded"})
			path := "/tasks/" + tk.ID.String()
			rq := req{method: tc.method, path: path, as: carol, header: map[string]string{tc.header: tc.value}}
			if tc.method == "PATCH" {
				rq.body, rq.contentType = map[string]any{"title": "changed"}, "application/merge-patch+json"
			}
			r := e.do(rq)
			if r.status != tc.status {
				t.Fatalf("%s: %s: status %d, want %d: %s", tc.header, tc.value, r.status, tc.status, r.body)
			}
			if tc.status != 400 {
				return
			}
			if p := r.problem(t); !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("detail %q, want one saying %q", p.Detail, tc.detail)
			}
			if d := cmp.Diff(tk, e.do(req{method: "GET", path: path, as: carol}).task(t)); d != "" {
				t.Errorf("a refused request changed the task (-before +after):\n%s", d)
			}
		})
	}
}
