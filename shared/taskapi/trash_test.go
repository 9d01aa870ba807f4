package taskapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/task"
)

type trashPage struct {
	Items []struct {
		task.Task
		DeletedAt string `json:"deleted_at"`
		DeletedBy string `json:"deleted_by"`
	}
	Next *string `json:"next_cursor"`
}

func (e *env) trash(who, query string) (trashPage, reply) {
	e.t.Helper()
	r := e.do(req{method: "GET", path: "/trash" + query, as: who})
	var p trashPage
	if r.status == 200 {
		r.decode(e.t, &p)
	}
	return p, r
}

func (p trashPage) titles() []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it.Title)
	}
	return out
}

// TestTrashRoutes: a deleted task goes to the trash, where its owner and
// an admin see it and nobody else; it is gone everywhere else, its parent
// stops counting it, and a restore brings it back as it was, at a new
// version, with its history; a purge ends it.
func TestTrashRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	parent := e.create(carol, map[string]any{"title": "parent"})
	tk := e.create(carol, map[string]any{"title": "plan", "labels": []string{"x"}, "assignee_id": dave})
	if r := e.do(req{method: "POST", path: "/tasks/" + tk.ID.String() + "/relations", as: carol, body: map[string]any{"kind": "subtask_of", "task_id": parent.ID.String()}}); r.status != 201 {
		t.Fatalf("relate: %d %s", r.status, r.body)
	}
	path := "/tasks/" + tk.ID.String()
	subtasks := func() task.Subtasks {
		t.Helper()
		r := e.do(req{method: "GET", path: "/tasks/" + parent.ID.String(), as: carol})
		return r.task(t).Subtasks
	}
	if got := subtasks(); got.Total != 1 {
		t.Fatalf("parent counts %+v before", got)
	}
	// A stranger cannot trash it; its assignee may not either.
	for who, want := range map[string]int{eve: 403, dave: 403} {
		if r := e.do(req{method: "DELETE", path: path, as: who}); r.status != want {
			t.Errorf("DELETE as %s: %d, want %d", who, r.status, want)
		}
	}
	if r := e.do(req{method: "DELETE", path: path, as: carol}); r.status != 204 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	// Gone everywhere but the trash.
	for _, c := range []struct {
		who, path string
		status    int
	}{
		{carol, path, 404}, {alice, path, 404}, {dave, path, 404},
		{carol, path + "/activity", 404}, {carol, path + "/relations", 404},
		{carol, path, 404}, // the cached entry too, read again
	} {
		if r := e.do(req{method: "GET", path: c.path, as: c.who}); r.status != c.status {
			t.Errorf("GET %s as %s: %d, want %d", c.path, c.who, r.status, c.status)
		}
	}
	if p, _ := e.list(carol, "limit=200"); slices.Contains(titles(p.Items), "plan") {
		t.Errorf("the list still has the trashed task")
	}
	if p, _ := e.list(dave, "assignee_id="+dave); len(p.Items) != 0 {
		t.Errorf("its assignee still lists it: %v", titles(p.Items))
	}
	if got := subtasks(); got.Total != 0 {
		t.Errorf("parent counts %+v with its subtask in the trash, want none", got)
	}
	// Who sees it in the trash: its owner and an admin, not its assignee.
	for who, want := range map[string][]string{carol: {"plan"}, alice: {"plan"}, dave: nil, bob: nil} {
		p, r := e.trash(who, "")
		if r.status != 200 || fmt.Sprint(p.titles()) != fmt.Sprint(want) {
			t.Errorf("GET /trash as %s: %d %v, want %v", who, r.status, p.titles(), want)
		}
	}
	if _, r := e.trash(eve, ""); r.status != 403 {
		t.Errorf("GET /trash without a role: %d", r.status)
	}
	p, _ := e.trash(carol, "")
	if it := p.Items[0]; it.DeletedBy != carol || it.DeletedAt == "" || it.Version != tk.Version+1 {
		t.Errorf("trashed %+v, want deleted by carol at version %d", it, tk.Version+1)
	}
	// Restore: refused to others, to a stale version and with a body.
	restore := path + "/restore"
	for _, c := range []struct {
		name   string
		r      req
		status int
	}{
		{"the assignee", req{method: "POST", path: restore, as: dave}, 404},
		{"no role", req{method: "POST", path: restore, as: eve}, 403},
		{"a stale version", req{method: "POST", path: restore, as: carol, header: map[string]string{"If-Match": `"1"`}}, 412},
		{"a body", req{method: "POST", path: restore, as: carol, body: map[string]any{"title": "x"}}, 400},
		{"a live task", req{method: "POST", path: "/tasks/" + parent.ID.String() + "/restore", as: carol}, 404},
		{"no task", req{method: "POST", path: "/tasks/nope/restore", as: carol}, 404},
	} {
		if r := e.do(c.r); r.status != c.status {
			t.Errorf("restore, %s: %d %s, want %d", c.name, r.status, r.body, c.status)
		}
	}
	r := e.do(req{method: "POST", path: restore, as: carol, header: map[string]string{"If-Match": fmt.Sprintf(`"%d"`, tk.Version+1)}})
	if r.status != 200 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	back := r.task(t)
	if back.Title != "plan" || back.Version != tk.Version+2 || r.header.Get("ETag") != fmt.Sprintf(`"%d"`, back.Version) || !slices.Equal(back.Labels, []string{"x"}) {
		t.Errorf("restored %+v (ETag %s)", back, r.header.Get("ETag"))
	}
	if got := e.do(req{method: "GET", path: path, as: dave}).task(t); got.Version != back.Version {
		t.Errorf("GET after restore: version %d, want %d", got.Version, back.Version)
	}
	if got := subtasks(); got.Total != 1 {
		t.Errorf("parent counts %+v after the restore, want it counted again", got)
	}
	var hist struct{ Items []struct{ Kind string } }
	e.do(req{method: "GET", path: path + "/activity", as: carol}).decode(t, &hist)
	var kinds []string
	for _, it := range hist.Items {
		kinds = append(kinds, it.Kind)
	}
	if strings.Join(kinds, " ") != "restored trashed relation_added created" {
		t.Errorf("history %v", kinds)
	}
	// Purge: only from the trash, only by who may delete it.
	if r := e.do(req{method: "DELETE", path: "/trash/" + tk.ID.String(), as: carol}); r.status != 404 {
		t.Errorf("purge of a live task: %d", r.status)
	}
	if r := e.do(req{method: "DELETE", path: path, as: carol}); r.status != 204 {
		t.Fatalf("DELETE again: %d", r.status)
	}
	for who, want := range map[string]int{dave: 404, eve: 403, carol: 204} {
		if r := e.do(req{method: "DELETE", path: "/trash/" + tk.ID.String(), as: who}); r.status != want {
			t.Errorf("purge as %s: %d %s, want %d", who, r.status, r.body, want)
		}
	}
	if p, _ := e.trash(carol, ""); len(p.Items) != 0 {
		t.Errorf("trash after the purge: %v", p.titles())
	}
	if r := e.do(req{method: "POST", path: restore, as: carol}); r.status != 404 {
		t.Errorf("restore after the purge: %d", r.status)
	}
	var n int
	if err := e.db.Primary.QueryRow(t.Context(), `SELECT count(*) FROM task_activity WHERE task_id = $1`, tk.ID).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d history lines outlived the purge (%v)", n, err)
	}
}

// TestTrashPaging: most recently trashed first, keyset-paged, and bad
// parameters refused.
func TestTrashPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []string
	for i := range 5 {
		tk := e.create(carol, map[string]any{"title": fmt.Sprint("t", i)})
		if r := e.do(req{method: "DELETE", path: "/tasks/" + tk.ID.String(), as: carol}); r.status != 204 {
			t.Fatal(r.status)
		}
		want = append([]string{tk.Title}, want...)
	}
	var got []string
	cursor := ""
	for {
		p, r := e.trash(carol, "?limit=2"+cursor)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		got = append(got, p.titles()...)
		if p.Next == nil {
			break
		}
		cursor = "&cursor=" + *p.Next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("trash %v, want %v", got, want)
	}
	for _, q := range []string{"?limit=0", "?limit=201", "?cursor=nope", "?sort=asc", "?limit=1&limit=2"} {
		if _, r := e.trash(carol, q); r.status != 400 {
			t.Errorf("GET /trash%s: %d, want 400", q, r.status)
		}
	}
}

// TestArchive: archived: true takes a task out of the default list and
// into ?archived=true; archived: false brings it back; the assignee may
// not archive, and bad values change nothing.
func TestArchive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tk := e.create(carol, map[string]any{"title": "old work", "assignee_id": dave})
	other := e.create(carol, map[string]any{"title": "current"})
	path := "/tasks/" + tk.ID.String()
	listed := func(q string) []string {
		t.Helper()
		p, r := e.list(carol, q)
		if r.status != 200 {
			t.Fatalf("list %s: %d %s", q, r.status, r.body)
		}
		return titles(p.Items)
	}
	for _, c := range []struct {
		name   string
		as     string
		body   any
		status int
	}{
		{"the assignee", dave, map[string]any{"archived": true}, 403},
		{"null", carol, map[string]any{"archived": nil}, 422},
		{"not a boolean", carol, map[string]any{"archived": "yes"}, 422},
		{"archived_at", carol, map[string]any{"archived_at": "2026-01-01T00:00:00Z"}, 422},
	} {
		if r := e.do(req{method: "PATCH", path: path, as: c.as, body: c.body}); r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
		}
	}
	r := e.do(req{method: "PATCH", path: path, as: carol, body: map[string]any{"archived": true}})
	got := r.task(t)
	if r.status != 200 || !got.Archived || got.ArchivedAt == nil || got.Version != 2 {
		t.Fatalf("archive: %d %s", r.status, r.body)
	}
	// Again: no change, no new version.
	if again := e.do(req{method: "PATCH", path: path, as: carol, body: map[string]any{"archived": true}}).task(t); again.Version != 2 || !again.ArchivedAt.Equal(*got.ArchivedAt) {
		t.Errorf("archiving an archived task changed it: %+v", again)
	}
	if l := listed("limit=50"); fmt.Sprint(l) != "[current]" {
		t.Errorf("default list %v", l)
	}
	if l := listed("archived=true"); fmt.Sprint(l) != "[old work]" {
		t.Errorf("archived list %v", l)
	}
	if l := listed("archived=false&status=todo"); fmt.Sprint(l) != "[current]" {
		t.Errorf("archived=false list %v", l)
	}
	if _, r := e.list(carol, "archived=maybe"); r.status != 400 {
		t.Errorf("archived=maybe: %d", r.status)
	}
	// Still a task: GET and its assignee's status change work.
	if r := e.do(req{method: "PATCH", path: path, as: dave, body: map[string]any{"status": "done"}}); r.status != 200 {
		t.Errorf("assignee's status change of an archived task: %d", r.status)
	}
	back := e.do(req{method: "PATCH", path: path, as: carol, body: map[string]any{"archived": false}}).task(t)
	if back.Archived || back.ArchivedAt != nil {
		t.Errorf("unarchived %+v", back)
	}
	if l := listed("limit=50"); len(l) != 2 {
		t.Errorf("default list after unarchiving %v", l)
	}
	_ = other
}
