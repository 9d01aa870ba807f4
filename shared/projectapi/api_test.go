package projectapi_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/task"
)

var (
	admin   = []auth.Role{auth.RoleAdmin}
	manager = []auth.Role{auth.RoleManager}
	member  = []auth.Role{auth.RoleMember}
)

var seq atomic.Int64

// fresh returns a name no other test uses.
func fresh(prefix string) string { return fmt.Sprintf("%s%d", prefix, seq.Add(1)) }

// newProject creates a project as a new maintainer and returns its key
// and that maintainer.
func newProject(p *pod) (string, caller) {
	p.t.Helper()
	owner := caller{sub: fresh("owner-"), roles: member}
	key := fresh("p-")
	p.must(201, owner, "POST", "/projects", map[string]any{"key": key, "name": "Team " + key})
	return key, owner
}

// seedTask stores a task of owner in key directly, so any caller can own one.
func seedTask(p *pod, key, owner string) task.Task {
	p.t.Helper()
	var tk task.Task
	err := p.db.Primary.QueryRow(context.Background(), `
INSERT INTO tasks (id, title, status, priority, owner_id, project)
VALUES (gen_random_uuid(), 'seeded', 'todo', 'low', $1, $2)
RETURNING id, version`, owner, key).Scan(&tk.ID, &tk.Version)
	if err != nil {
		p.t.Fatal(err)
	}
	return tk
}

func TestProjectLifecycle(t *testing.T) {
	t.Parallel()
	p := newWorld(t).pod(t)
	me := caller{sub: fresh("me-"), roles: member}
	other := caller{sub: fresh("other-"), roles: member}

	r := p.must(201, me, "POST", "/projects", map[string]any{"key": "web-team", "name": "Web", "description": "the site"})
	if r.header.Get("Location") != "/projects/web-team" || r.header.Get("ETag") != `"1"` {
		t.Fatalf("headers %v", r.header)
	}
	var got struct {
		Key  string  `json:"key"`
		Role *string `json:"role"`
	}
	r.decode(t, &got)
	if got.Key != "web-team" || got.Role == nil || *got.Role != "maintainer" {
		t.Fatalf("created %s", r.body)
	}
	p.must(409, other, "POST", "/projects", map[string]any{"key": "web-team", "name": "Mine"})
	for _, body := range []map[string]any{{"key": "Web", "name": "x"}, {"key": "~x", "name": "x"}, {"key": "ok-key"}, {"key": "ok-key", "name": ""}} {
		p.must(422, me, "POST", "/projects", body)
	}
	p.must(400, me, "POST", "/projects", map[string]any{"key": "ok-key", "name": "x", "colour": "red"})

	// Others do not see it; the creator's list holds it and its personal project.
	p.must(404, other, "GET", "/projects/web-team", nil)
	p.must(404, other, "PATCH", "/projects/web-team", map[string]any{"name": "taken"})
	p.must(404, other, "DELETE", "/projects/web-team", nil)
	var page struct {
		Items []struct {
			Key      string `json:"key"`
			Personal bool   `json:"personal"`
		} `json:"items"`
		Next *string `json:"next_cursor"`
	}
	p.must(200, me, "GET", "/projects", nil).decode(t, &page)
	if len(page.Items) != 2 || page.Items[0].Key != "web-team" || page.Items[1].Key != "~"+me.sub || !page.Items[1].Personal {
		t.Fatalf("my projects %+v", page.Items)
	}
	p.must(200, other, "GET", "/projects", nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Key != "~"+other.sub {
		t.Fatalf("other's projects %+v", page.Items)
	}
	p.must(400, me, "GET", "/projects?cursor=%%%", nil)
	p.must(400, me, "GET", "/projects?sort=key", nil)

	// Edit under If-Match.
	p.must(412, me, "PATCH", "/projects/web-team", map[string]any{"name": "Web!"}, "If-Match", `"7"`)
	r = p.must(200, me, "PATCH", "/projects/web-team", map[string]any{"name": "Web!"}, "If-Match", `"1"`)
	if r.header.Get("ETag") != `"2"` {
		t.Fatalf("ETag after change %q", r.header.Get("ETag"))
	}
	p.must(422, me, "PATCH", "/projects/web-team", map[string]any{"key": "other"})

	// A viewer sees it but may not change it.
	p.must(201, me, "PUT", "/projects/web-team/members/"+other.sub, map[string]any{"role": "viewer"})
	p.must(200, other, "GET", "/projects/web-team", nil)
	p.must(403, other, "PATCH", "/projects/web-team", map[string]any{"name": "taken"})
	p.must(403, other, "DELETE", "/projects/web-team", nil)
	p.must(403, other, "GET", "/projects/web-team/members", nil)

	// Not deleted while it holds a task; then deleted, with its members.
	p.must(201, me, "POST", "/tasks", map[string]any{"title": "t", "project": "web-team"})
	p.must(409, me, "DELETE", "/projects/web-team", nil)
	var n int
	if err := p.db.Primary.QueryRow(t.Context(), `SELECT count(*) FROM project_members WHERE project = 'web-team'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("members after a refused delete: %d %v", n, err)
	}
	if _, err := p.db.Primary.Exec(t.Context(), `DELETE FROM tasks WHERE project = 'web-team'`); err != nil {
		t.Fatal(err)
	}
	p.must(204, me, "DELETE", "/projects/web-team", nil)
	p.must(404, me, "GET", "/projects/web-team", nil)
	// A personal project is never deleted, and has no members.
	p.must(409, me, "DELETE", "/projects/~"+me.sub, nil)
	p.must(409, me, "PUT", "/projects/~"+me.sub+"/members/"+other.sub, map[string]any{"role": "viewer"})
	p.must(404, other, "GET", "/projects/~"+me.sub, nil)
}

func TestMembersRoutes(t *testing.T) {
	t.Parallel()
	p := newWorld(t).pod(t)
	key, owner := newProject(p)
	base := "/projects/" + key + "/members/"
	dave := caller{sub: fresh("dave-"), roles: member}
	p.must(201, owner, "PUT", base+dave.sub, map[string]any{"role": "member"})
	p.must(200, owner, "PUT", base+dave.sub, map[string]any{"role": "member"})
	p.must(422, owner, "PUT", base+dave.sub, map[string]any{"role": "owner"})
	p.must(403, dave, "PUT", base+"someone", map[string]any{"role": "viewer"})
	// The last maintainer stays; an admin may override.
	p.must(409, owner, "PUT", base+owner.sub, map[string]any{"role": "member"})
	p.must(409, owner, "DELETE", base+owner.sub, nil)
	var page struct {
		Items []struct{ Subject, Role string } `json:"items"`
		Next  *string                          `json:"next_cursor"`
	}
	p.must(200, dave, "GET", "/projects/"+key+"/members?limit=1", nil).decode(t, &page)
	if len(page.Items) != 1 || page.Next == nil {
		t.Fatalf("first page %+v", page)
	}
	first := page.Items[0].Subject
	p.must(200, dave, "GET", "/projects/"+key+"/members?limit=1&cursor="+*page.Next, nil).decode(t, &page)
	if len(page.Items) != 1 || page.Items[0].Subject == first || page.Next != nil {
		t.Fatalf("second page %+v", page)
	}
	// A member may leave; then the project is gone for it.
	p.must(204, dave, "DELETE", base+dave.sub, nil)
	p.must(404, dave, "GET", "/projects/"+key, nil)
	p.must(404, owner, "DELETE", base+dave.sub, nil)
	p.must(204, caller{sub: fresh("root-"), roles: admin}, "DELETE", base+owner.sub, nil)
}

// TestAccessMatrix is every cell of global role × project role × whether
// the caller owns the task, through the routes, with the project role
// coming from the members API and, separately, from a Keycloak group:
// both sources must answer alike.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	p := newWorld(t).pod(t)
	ops := []string{"get task", "list project", "patch title", "create in project", "get project", "list members", "put member", "delete task"}
	// want[global/project role/relation] are the statuses of ops; "list
	// project" is 200 when the task is in the list, 404 when left out.
	want := map[string]string{}
	set := func(global, prole, owner, stranger string) {
		want[global+"/"+prole+"/owner"] = owner
		want[global+"/"+prole+"/stranger"] = stranger
	}
	all := "200 200 200 201 200 200 201 204"
	for _, pr := range []string{"none", "viewer", "member", "maintainer"} {
		set("admin", pr, all, all)
		set("nobody", pr, "403 403 403 403 403 403 403 403", "403 403 403 403 403 403 403 403")
	}
	for _, pr := range []string{"none", "viewer", "member"} {
		set("manager", pr, "200 200 200 201 200 200 403 204", "200 200 200 201 200 200 403 403")
	}
	set("manager", "maintainer", all, all)
	set("member", "none", "404 404 404 422 404 404 404 404", "404 404 404 422 404 404 404 404")
	set("member", "viewer", "200 200 403 403 200 403 403 403", "200 200 403 403 200 403 403 403")
	set("member", "member", "200 200 200 201 200 200 403 204", "200 200 200 201 200 200 403 403")
	set("member", "maintainer", all, all)

	globals := map[string][]auth.Role{"admin": admin, "manager": manager, "member": member, "nobody": nil}
	for g, roles := range globals {
		for _, pr := range []string{"none", "viewer", "member", "maintainer"} {
			sources := []string{"api", "group"}
			if pr == "none" {
				sources = []string{"-"}
			}
			for _, src := range sources {
				for _, rel := range []string{"owner", "stranger"} {
					name := fmt.Sprintf("%s/%s/%s/%s", g, pr, src, rel)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						key, owner := newProject(p)
						me := caller{sub: fresh("c-"), roles: roles}
						switch src {
						case "api":
							p.must(201, owner, "PUT", "/projects/"+key+"/members/"+me.sub, map[string]any{"role": pr})
						case "group":
							me.groups = []string{"/projects/" + key + "/" + pr, "/other/group"}
						}
						taskOwner := owner.sub
						if rel == "owner" {
							taskOwner = me.sub
						}
						tk := seedTask(p, key, taskOwner)
						path := "/tasks/" + tk.ID.String()
						var got []string
						code := func(r reply) { got = append(got, fmt.Sprint(r.status)) }
						code(p.do(me, "GET", path, nil))
						lr := p.do(me, "GET", "/tasks?limit=200&project="+key, nil)
						if lr.status == 200 {
							var page struct{ Items []task.Task }
							lr.decode(t, &page)
							if !slices.ContainsFunc(page.Items, func(x task.Task) bool { return x.ID == tk.ID }) {
								lr.status = 404
							}
						}
						code(lr)
						code(p.do(me, "PATCH", path, map[string]any{"title": "changed"}))
						code(p.do(me, "POST", "/tasks", map[string]any{"title": "new", "project": key}))
						code(p.do(me, "GET", "/projects/"+key, nil))
						code(p.do(me, "GET", "/projects/"+key+"/members", nil))
						code(p.do(me, "PUT", "/projects/"+key+"/members/"+fresh("x-"), map[string]any{"role": "viewer"}))
						code(p.do(me, "DELETE", path, nil))
						if g, w := strings.Join(got, " "), want[g+"/"+pr+"/"+rel]; g != w {
							t.Errorf("got  %s\nwant %s\n(ops: %s)", g, w, strings.Join(ops, ", "))
						}
					})
				}
			}
		}
	}
}

// TestRemovedMember: a member removed through the API is refused at once
// by the process that removed it and within a second by another that had
// its roles cached; a forged or other project's group grants nothing.
func TestRemovedMember(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.pod(t), w.pod(t)
	key, owner := newProject(a)
	dave := caller{sub: fresh("dave-"), roles: member}
	a.must(201, owner, "PUT", "/projects/"+key+"/members/"+dave.sub, map[string]any{"role": "member"})
	tk := a.must(201, owner, "POST", "/tasks", map[string]any{"title": "shared", "project": key})
	var created task.Task
	tk.decode(t, &created)
	path := "/tasks/" + created.ID.String()
	// Both pods cache dave's roles, and the task.
	a.must(200, dave, "GET", path, nil)
	b.must(200, dave, "GET", path, nil)
	b.must(200, dave, "GET", path, nil)

	a.must(204, owner, "DELETE", "/projects/"+key+"/members/"+dave.sub, nil)
	removed := time.Now()
	a.must(404, dave, "GET", path, nil)
	a.must(404, dave, "PATCH", path, map[string]any{"title": "mine now"})
	for {
		r := b.do(dave, "GET", path, nil)
		if r.status == 404 {
			break
		}
		if r.status != 200 || time.Since(removed) > time.Second {
			t.Fatalf("pod b answered %d %s after %s", r.status, r.body, time.Since(removed))
		}
		time.Sleep(20 * time.Millisecond)
	}
	var page struct{ Items []task.Task }
	b.must(200, dave, "GET", "/tasks?project="+key, nil).decode(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("a removed member still lists %d tasks", len(page.Items))
	}

	// Another project's group, or a token from another issuer naming this
	// one, grants nothing.
	elsewhere := caller{sub: dave.sub, roles: member, groups: []string{"/projects/other-team/maintainer", "/projects/" + key}}
	a.must(404, elsewhere, "GET", path, nil)
	forged := caller{sub: dave.sub, roles: member, groups: []string{"/projects/" + key + "/maintainer"}}
	other := newWorld(t)
	tok := forged.token(t, other.iss)
	req, _ := http.NewRequest("GET", a.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
}

// TestGrantIsImmediate: a role given, or a project created, in one process
// counts at once in another that had the caller's roles cached: a refusal
// by cached roles is decided again on fresh ones.
func TestGrantIsImmediate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.pod(t), w.pod(t)
	carol := caller{sub: fresh("carol-"), roles: member}
	dave := caller{sub: fresh("dave-"), roles: member}
	// b caches both callers' roles (none yet).
	b.must(200, carol, "GET", "/tasks", nil)
	b.must(200, dave, "GET", "/tasks", nil)
	key := fresh("g-")
	a.must(201, carol, "POST", "/projects", map[string]any{"key": key, "name": "G"})
	var tk task.Task
	b.must(201, carol, "POST", "/tasks", map[string]any{"title": "at once", "project": key}).decode(t, &tk)
	b.must(404, dave, "GET", "/tasks/"+tk.ID.String(), nil)
	a.must(201, carol, "PUT", "/projects/"+key+"/members/"+dave.sub, map[string]any{"role": "viewer"})
	b.must(200, dave, "GET", "/tasks/"+tk.ID.String(), nil)
	var page struct{ Items []task.Task }
	b.must(200, dave, "GET", "/tasks?project="+key, nil).decode(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("dave lists %d tasks of the project he was just given", len(page.Items))
	}
	b.must(200, dave, "GET", "/projects/"+key, nil)
}

// TestMoveTask: a PATCH of project needs the member role on both sides; a
// project the caller cannot see reads as one that does not exist, and a
// refused move changes nothing.
func TestMoveTask(t *testing.T) {
	t.Parallel()
	p := newWorld(t).pod(t)
	from, _ := newProject(p)
	viewed, _ := newProject(p)
	into, owner := newProject(p)
	hidden, _ := newProject(p)
	carol := caller{sub: fresh("carol-"), roles: member,
		groups: []string{"/projects/" + from + "/member", "/projects/" + viewed + "/viewer"}}
	p.must(201, owner, "PUT", "/projects/"+into+"/members/"+carol.sub, map[string]any{"role": "member"})
	var tk task.Task
	p.must(201, carol, "POST", "/tasks", map[string]any{"title": "move me", "project": from}).decode(t, &tk)
	path := "/tasks/" + tk.ID.String()
	p.must(403, carol, "PATCH", path, map[string]any{"project": viewed})
	p.must(422, carol, "PATCH", path, map[string]any{"project": hidden})
	p.must(422, carol, "PATCH", path, map[string]any{"project": "no-such-project"})
	p.must(422, carol, "PATCH", path, map[string]any{"project": "Bad Key"})
	p.must(422, carol, "PATCH", path, map[string]any{"project": nil})
	var same task.Task
	p.must(200, carol, "GET", path, nil).decode(t, &same)
	if same.Project != from || same.Version != tk.Version {
		t.Fatalf("refused moves changed the task: %+v", same)
	}
	var moved task.Task
	p.must(200, carol, "PATCH", path, map[string]any{"project": into}, "If-Match", fmt.Sprintf(`"%d"`, tk.Version)).decode(t, &moved)
	if moved.Project != into || moved.Version != tk.Version+1 {
		t.Fatalf("moved %+v", moved)
	}
	// The move is an update event naming the field.
	var changed []string
	err := p.db.Primary.QueryRow(t.Context(), `
SELECT array(SELECT jsonb_array_elements_text(data->'changed')) FROM outbox
WHERE type = 'dev.taskfn.task.updated.v1' AND data->'task'->>'id' = $1`, tk.ID.String()).Scan(&changed)
	if err != nil || !slices.Equal(changed, []string{"project"}) {
		t.Fatalf("update event's changed %v (%v), want [project]", changed, err)
	}
	// Out of the old project, into one of the caller's own.
	p.must(200, carol, "PATCH", path, map[string]any{"project": "~" + carol.sub})
	p.must(404, caller{sub: fresh("x-"), roles: member, groups: []string{"/projects/" + from + "/member"}}, "GET", path, nil)
}
