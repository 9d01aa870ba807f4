package taskapi

import (
	"strings"
	"testing"
)

// TestRelationRoutes: through the routes, who may relate, the rules, and a
// hidden other task.
func TestRelationRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	parent := e.create(carol, map[string]any{"title": "parent"})
	child := e.create(carol, map[string]any{"title": "child"})
	davesTask := e.create(dave, map[string]any{"title": "dave's", "assignee_id": carol})
	private := e.create(dave, map[string]any{"title": "dave's alone"})
	rel := func(from string) string { return "/tasks/" + from + "/relations" }
	for _, c := range []struct {
		name, as, path string
		body           any
		status         int
		slug           string
	}{
		{"child of parent", carol, rel(child.ID.String()), map[string]any{"kind": "subtask_of", "task_id": parent.ID.String()}, 201, ""},
		{"parent child of child: a cycle", carol, rel(parent.ID.String()), map[string]any{"kind": "subtask_of", "task_id": child.ID.String()}, 409, "relation-cycle"},
		{"a second parent", carol, rel(child.ID.String()), map[string]any{"kind": "subtask_of", "task_id": davesTask.ID.String()}, 409, "has-parent"},
		{"the same again", carol, rel(child.ID.String()), map[string]any{"kind": "subtask_of", "task_id": parent.ID.String()}, 409, "relation-exists"},
		{"blocks one carol sees", carol, rel(parent.ID.String()), map[string]any{"kind": "blocks", "task_id": davesTask.ID.String()}, 201, ""},
		{"relates to one carol does not see", carol, rel(parent.ID.String()), map[string]any{"kind": "relates_to", "task_id": private.ID.String()}, 422, "validation"},
		{"from a task carol only is assigned", carol, rel(davesTask.ID.String()), map[string]any{"kind": "relates_to", "task_id": parent.ID.String()}, 403, "forbidden"},
		{"from a task carol does not see", carol, rel(private.ID.String()), map[string]any{"kind": "relates_to", "task_id": parent.ID.String()}, 404, "not-found"},
		{"to itself", carol, rel(parent.ID.String()), map[string]any{"kind": "duplicates", "task_id": parent.ID.String()}, 422, "validation"},
		{"unknown kind", carol, rel(parent.ID.String()), map[string]any{"kind": "parent_of", "task_id": child.ID.String()}, 422, "validation"},
		{"unknown member", carol, rel(parent.ID.String()), map[string]any{"kind": "blocks", "task_id": child.ID.String(), "x": 1}, 400, "bad-request"},
		{"dave relates his own to carol's parent: he cannot see it", dave, rel(private.ID.String()), map[string]any{"kind": "relates_to", "task_id": parent.ID.String()}, 422, "validation"},
		{"an admin relates dave's to parent", alice, rel(private.ID.String()), map[string]any{"kind": "relates_to", "task_id": parent.ID.String()}, 201, ""},
	} {
		r := e.do(req{method: "POST", path: c.path, as: c.as, body: c.body})
		if r.status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.status)
			continue
		}
		if c.slug != "" && !strings.HasSuffix(r.problem(t).Type, "/"+c.slug) {
			t.Errorf("%s: %s, want %s", c.name, r.body, c.slug)
		}
		if c.status == 201 {
			var v struct {
				Hidden bool
				Title  *string
			}
			r.decode(t, &v)
			if v.Hidden || v.Title == nil || *v.Title == "" {
				t.Errorf("%s: created %s, want the other task named", c.name, r.body)
			}
		}
	}
	type view struct {
		Kind, Direction string
		Hidden          bool
		Title           *string
	}
	var got struct{ Items []view }
	r := e.do(req{method: "GET", path: rel(parent.ID.String()), as: carol})
	r.decode(t, &got)
	var lines []string
	for _, v := range got.Items {
		title := "hidden"
		if !v.Hidden {
			title = *v.Title
		}
		lines = append(lines, v.Direction+" "+v.Kind+" "+title)
	}
	want := "outgoing blocks dave's|incoming subtask_of child|incoming relates_to hidden"
	if strings.Join(lines, "|") != want {
		t.Errorf("parent's relations %v, want %s", lines, want)
	}
	if r := e.do(req{method: "GET", path: rel(private.ID.String()), as: carol}); r.status != 404 {
		t.Errorf("relations of a task carol does not see: %d", r.status)
	}
	if r := e.do(req{method: "DELETE", path: rel(child.ID.String()) + "/subtask_of/" + parent.ID.String(), as: dave}); r.status != 404 {
		t.Errorf("dave removing carol's: %d", r.status)
	}
	if r := e.do(req{method: "DELETE", path: rel(child.ID.String()) + "/subtask_of/" + parent.ID.String(), as: carol}); r.status != 204 {
		t.Errorf("remove: %d %s", r.status, r.body)
	}
	if r := e.do(req{method: "DELETE", path: rel(child.ID.String()) + "/subtask_of/" + parent.ID.String(), as: carol}); r.status != 404 {
		t.Errorf("remove again: %d", r.status)
	}
}
