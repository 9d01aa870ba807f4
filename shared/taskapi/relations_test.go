package taskapi

import (
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/task"
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

// TestSubtasks: through the routes, a parent's counts follow its subtasks
// (the cached GET included, with a new ETag each time), and ?parent=
// lists the subtasks the caller may see.
func TestSubtasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	parent := e.create(carol, map[string]any{"title": "parent"})
	a := e.create(carol, map[string]any{"title": "a"})
	b := e.create(carol, map[string]any{"title": "b", "status": "done"})
	hidden := e.create(dave, map[string]any{"title": "dave's"})
	other := e.create(carol, map[string]any{"title": "not a subtask"})
	pid := parent.ID.String()
	etag := ""
	steps := []struct {
		name, as, method, path string
		body                   any
		status                 int
		want                   task.Subtasks
	}{
		{"a becomes a subtask", carol, "POST", "/tasks/" + a.ID.String() + "/relations", map[string]any{"kind": "subtask_of", "task_id": pid}, 201, task.Subtasks{Total: 1}},
		{"b, done, too", carol, "POST", "/tasks/" + b.ID.String() + "/relations", map[string]any{"kind": "subtask_of", "task_id": pid}, 201, task.Subtasks{Total: 2, Done: 1}},
		{"dave's, which carol cannot see, by an admin", alice, "POST", "/tasks/" + hidden.ID.String() + "/relations", map[string]any{"kind": "subtask_of", "task_id": pid}, 201, task.Subtasks{Total: 3, Done: 1}},
		{"a done", carol, "PATCH", "/tasks/" + a.ID.String(), map[string]any{"status": "done"}, 200, task.Subtasks{Total: 3, Done: 2}},
		{"a and b reopened in bulk", carol, "PATCH", "/tasks", map[string]any{"ids": []string{a.ID.String(), b.ID.String()}, "patch": map[string]any{"status": "todo"}}, 200, task.Subtasks{Total: 3}},
		{"dave's deleted", dave, "DELETE", "/tasks/" + hidden.ID.String(), nil, 204, task.Subtasks{Total: 2}},
	}
	for _, s := range steps {
		r := e.do(req{method: s.method, path: s.path, as: s.as, body: s.body})
		if r.status != s.status {
			t.Fatalf("%s: %d %s", s.name, r.status, r.body)
		}
		g := e.do(req{method: "GET", path: "/tasks/" + pid, as: carol})
		got := g.task(t)
		if got.Subtasks != s.want {
			t.Errorf("%s: parent shows %+v, want %+v", s.name, got.Subtasks, s.want)
		}
		if tag := g.header.Get("ETag"); tag == etag {
			t.Errorf("%s: the parent's ETag stayed %s", s.name, tag)
		} else {
			etag = tag
		}
	}
	if _, r := e.list(carol, "parent=not-an-id"); r.status != 400 {
		t.Errorf("parent=not-an-id: %d", r.status)
	}
	e.do(req{method: "POST", path: "/tasks/" + hidden.ID.String() + "/relations", as: alice, body: map[string]any{"kind": "relates_to", "task_id": other.ID.String()}})
	for _, c := range []struct {
		as, query string
		want      []string
	}{
		{carol, "parent=" + pid, []string{"b", "a"}},
		{carol, "parent=" + pid + "&status=todo&sort=created_at", []string{"a", "b"}},
		{carol, "parent=" + pid + "&q=b", []string{"b"}},
		{carol, "parent=" + other.ID.String(), []string{}},
		{dave, "parent=" + pid, []string{}},
		{alice, "parent=" + pid + "&limit=1", []string{"b"}},
	} {
		p, r := e.list(c.as, c.query)
		if r.status != 200 || strings.Join(titles(p.Items), ",") != strings.Join(c.want, ",") {
			t.Errorf("%s ?%s: %d %v, want %v", c.as, c.query, r.status, titles(p.Items), c.want)
		}
	}
}
