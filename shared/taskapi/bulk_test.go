package taskapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// TestBulkUpdate: all or nothing. Every task is checked as a single PATCH
// would check it; a refusal names each refused task and changes nothing;
// success writes each task's events, history and cache entry.
func TestBulkUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mine := []task.Task{e.create(carol, map[string]any{"title": "a"}), e.create(carol, map[string]any{"title": "b"}), e.create(carol, map[string]any{"title": "c"})}
	others := e.create(dave, map[string]any{"title": "dave's"})
	assigned := e.create(dave, map[string]any{"title": "for carol", "assignee_id": carol})
	ids := func(ts ...task.Task) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID.String())
		}
		return out
	}
	tests := []struct {
		name   string
		body   any
		status int
		slug   string
		fields []string // errors' fields, in order
	}{
		{"not an object", `[1]`, 400, "bad-request", nil},
		{"unknown member", map[string]any{"ids": ids(mine...), "patch": map[string]any{"status": "done"}, "colour": 1}, 400, "bad-request", nil},
		{"no ids", map[string]any{"patch": map[string]any{"status": "done"}}, 422, "validation", []string{"ids"}},
		{"too many", map[string]any{"ids": make([]string, 101), "patch": map[string]any{"status": "done"}}, 422, "validation", []string{"ids"}},
		{"bad and duplicate ids", map[string]any{"ids": []string{mine[0].ID.String(), "x", mine[0].ID.String()}, "patch": map[string]any{"status": "done"}}, 422, "validation", []string{"ids[1]", "ids[2]"}},
		{"no patch", map[string]any{"ids": ids(mine...)}, 422, "validation", []string{"patch"}},
		{"bad patch field", map[string]any{"ids": ids(mine...), "patch": map[string]any{"status": 5}}, 422, "validation", []string{"patch.status"}},
		{"version of a task not listed", map[string]any{"ids": ids(mine[0]), "patch": map[string]any{"status": "done"}, "versions": map[string]int{others.ID.String(): 1}}, 422, "validation", []string{"versions." + others.ID.String()}},
		{"an invalid result", map[string]any{"ids": ids(mine...), "patch": map[string]any{"title": "  "}}, 422, "bulk-refused", []string{"ids[0]", "ids[1]", "ids[2]"}},
		{"another's task hides it", map[string]any{"ids": ids(mine[0], others, mine[1]), "patch": map[string]any{"status": "done"}}, 404, "bulk-refused", []string{"ids[1]"}},
		{"assigned: status only", map[string]any{"ids": ids(assigned, mine[0]), "patch": map[string]any{"title": "mine"}}, 403, "bulk-refused", []string{"ids[0]"}},
		{"stale version", map[string]any{"ids": ids(mine...), "patch": map[string]any{"status": "done"}, "versions": map[string]int{mine[2].ID.String(): 7}}, 412, "bulk-refused", []string{"ids[2]"}},
		{"every refusal, gravest status", map[string]any{"ids": ids(others, assigned, mine[0]), "patch": map[string]any{"title": "x"}, "versions": map[string]int{mine[0].ID.String(): 9}}, 404, "bulk-refused", []string{"ids[0]", "ids[1]", "ids[2]"}},
		{"a task that does not exist", map[string]any{"ids": []string{uuid.NewString()}, "patch": map[string]any{"status": "done"}}, 404, "bulk-refused", []string{"ids[0]"}},
	}
	before := e.rows()
	for _, tt := range tests {
		r := e.do(req{method: "PATCH", path: "/tasks", as: carol, body: tt.body})
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		p := r.problem(t)
		if !strings.HasSuffix(p.Type, "/"+tt.slug) {
			t.Errorf("%s: type %s, want %s", tt.name, p.Type, tt.slug)
		}
		var got []string
		for _, f := range p.Errors {
			got = append(got, f.Field)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.fields) {
			t.Errorf("%s: errors %v, want %v (%s)", tt.name, got, tt.fields, r.body)
		}
	}
	// Nothing of it changed anything.
	for _, tk := range append(mine, others, assigned) {
		cur, err := task.NewStore(e.db)
		if err != nil {
			t.Fatal(err)
		}
		now, err := cur.GetPrimary(context.Background(), tk.ID)
		if err != nil || now.Version != tk.Version {
			t.Fatalf("a refused bulk change changed %s: %+v %v", tk.Title, now, err)
		}
	}
	if e.rows() != before {
		t.Fatal("rows appeared")
	}

	// Success: the assignee may set the status of the task assigned to it,
	// alongside its own tasks; each gets its version, events and history.
	r := e.do(req{method: "PATCH", path: "/tasks", as: carol, body: map[string]any{
		"ids": ids(mine[0], assigned, mine[1], mine[2]), "patch": map[string]any{"status": "done"},
		"versions": map[string]int{mine[0].ID.String(): int(mine[0].Version)}}})
	if r.status != 200 {
		t.Fatalf("bulk: %d %s", r.status, r.body)
	}
	var page struct{ Items []task.Task }
	r.decode(t, &page)
	if len(page.Items) != 4 || page.Items[1].ID != assigned.ID {
		t.Fatalf("items %+v", page.Items)
	}
	for _, it := range page.Items {
		if it.Status != task.StatusDone || it.Version != 2 {
			t.Errorf("after the bulk change %s: %+v", it.Title, it)
		}
		if g := e.do(req{method: "GET", path: "/tasks/" + it.ID.String(), as: carol}); g.status != 200 || g.task(t).Version != 2 {
			t.Errorf("GET after the bulk change: %d %s", g.status, g.body)
		}
	}
	var events, lines int
	if err := e.db.Primary.QueryRow(context.Background(), `
SELECT (SELECT count(*) FROM outbox WHERE type = 'dev.taskfn.task.status_changed.v1' AND key = ANY($1)),
       (SELECT count(*) FROM task_activity WHERE kind = 'updated' AND task_id = ANY($1::uuid[]))`, ids(page.Items...)).Scan(&events, &lines); err != nil {
		t.Fatal(err)
	}
	if events != 4 || lines != 4 {
		t.Errorf("%d status events and %d history lines, want one each a task", events, lines)
	}
	// Every kind of field through the one statement: arrays, times, nulls.
	r = e.do(req{method: "PATCH", path: "/tasks", as: carol, body: map[string]any{"ids": ids(mine...), "patch": map[string]any{
		"labels": []string{"x", "y, z"}, "due_at": "2026-12-24T18:00:00Z", "assignee_id": dave, "description": "bulk\ntext", "priority": "urgent"}}})
	if r.status != 200 {
		t.Fatalf("bulk of every field: %d %s", r.status, r.body)
	}
	for i, tk := range mine {
		got := e.do(req{method: "GET", path: "/tasks/" + tk.ID.String(), as: carol}).task(t)
		if got.Title != tk.Title || fmt.Sprint(got.Labels) != "[x y, z]" || got.DueAt == nil || got.DueAt.Format("2006-01-02T15") != "2026-12-24T18" ||
			got.AssigneeID == nil || *got.AssigneeID != dave || got.Description != "bulk\ntext" || got.Priority != task.PriorityUrgent || got.Version != 3 {
			t.Errorf("task %d after the bulk change: %+v", i, got)
		}
	}
	r = e.do(req{method: "PATCH", path: "/tasks", as: carol, body: map[string]any{"ids": ids(mine...), "patch": map[string]any{"labels": nil, "due_at": nil, "assignee_id": nil}}})
	r.decode(t, &page)
	if r.status != 200 || len(page.Items[0].Labels) != 0 || page.Items[0].DueAt != nil || page.Items[0].AssigneeID != nil {
		t.Errorf("bulk clearing: %d %s", r.status, r.body)
	}
	mine[0], mine[1], mine[2] = page.Items[0], page.Items[1], page.Items[2]

	// Again: nothing to change, nothing written.
	r = e.do(req{method: "PATCH", path: "/tasks", as: carol, body: map[string]any{"ids": ids(mine...), "patch": map[string]any{"status": "done"}}})
	r.decode(t, &page)
	if r.status != 200 || page.Items[0].Version != mine[0].Version {
		t.Errorf("no-op bulk change: %d %+v", r.status, page.Items)
	}
}
