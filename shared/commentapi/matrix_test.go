package commentapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
)

// TestCollaborationMatrix is the comment matrix's cells (global role ×
// project role × assignee, plus a caller with no role) for the other three
// collaboration features: a task's activity, its relations in both
// directions, and bulk changes. The task is the project owner's; "mine" is
// a task in the caller's personal project, so relating it depends only on
// whether the caller sees the owner's task.
func TestCollaborationMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	globals := map[string][]auth.Role{"admin": {auth.RoleAdmin}, "manager": {auth.RoleManager}, "member": {auth.RoleMember}, "norole": nil}
	ops := []string{"activity", "relations", "relate it", "relate to it", "unrelate it", "bulk status", "bulk title"}
	const all = "200 200 201 201 204 200 200"
	want := map[string]string{
		"admin/none": all, "admin/viewer": all, "admin/maintainer": all,
		"manager/none": all, "manager/viewer": all, "manager/maintainer": all,
		"member/none":            "404 404 404 422 404 404 404",
		"member/viewer":          "200 200 403 201 403 403 403",
		"member/member":          all,
		"member/maintainer":      all,
		"member/none+assignee":   "200 200 403 201 403 200 403",
		"member/viewer+assignee": "200 200 403 201 403 200 403",
		"norole/none":            "403 403 403 403 403 403 403",
		"norole/member":          "403 403 403 403 403 403 403",
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, pr, _ := strings.Cut(name, "/")
			pr, asAssignee := strings.CutSuffix(pr, "+assignee")
			owner := who{sub: fresh("owner-"), roles: []auth.Role{auth.RoleMember}}
			key := fresh("x-")
			e.must(201, owner, "POST", "/projects", map[string]any{"key": key, "name": "X"})
			me := who{sub: fresh("me-"), roles: globals[g]}
			if pr != "none" {
				me.groups = []string{"/projects/" + key + "/" + pr}
			}
			body := map[string]any{"title": "shared", "project": key}
			if asAssignee {
				body["assignee_id"] = me.sub
			}
			tk := decode[struct{ ID string }](t, e.must(201, owner, "POST", "/tasks", body)).ID
			next := decode[struct{ ID string }](t, e.must(201, owner, "POST", "/tasks", map[string]any{"title": "next", "project": key})).ID
			e.must(201, owner, "POST", "/tasks/"+tk+"/relations", map[string]any{"kind": "blocks", "task_id": next})
			mine := next // a caller without a role has no task of its own: the gate refuses first anyway
			if g != "norole" {
				mine = decode[struct{ ID string }](t, e.must(201, me, "POST", "/tasks", map[string]any{"title": "mine"})).ID
			}
			got := []int{
				e.do(me, "GET", "/tasks/"+tk+"/activity", nil).status,
				e.do(me, "GET", "/tasks/"+tk+"/relations", nil).status,
				e.do(me, "POST", "/tasks/"+tk+"/relations", map[string]any{"kind": "relates_to", "task_id": mine}).status,
				e.do(me, "POST", "/tasks/"+mine+"/relations", map[string]any{"kind": "blocks", "task_id": tk}).status,
				e.do(me, "DELETE", "/tasks/"+tk+"/relations/blocks/"+next, nil).status,
				e.do(me, "PATCH", "/tasks", map[string]any{"ids": []string{tk}, "patch": map[string]any{"status": "in_progress"}}).status,
				e.do(me, "PATCH", "/tasks", map[string]any{"ids": []string{tk}, "patch": map[string]any{"title": "renamed"}}).status,
			}
			if g := strings.Trim(fmt.Sprint(got), "[]"); g != w {
				t.Errorf("got %s, want %s (%s)", g, w, strings.Join(ops, ", "))
			}
			// What a refusal refused left nothing behind: the owner's
			// relation is there unless the caller could remove it, the
			// title is the owner's unless the caller could rename.
			var title string
			var blocks int
			if err := e.db.Primary.QueryRow(t.Context(), `SELECT title, (SELECT count(*) FROM task_relations WHERE task_id = $1 AND kind = 'blocks' AND other_id = $2) FROM tasks WHERE id = $1`, tk, next).Scan(&title, &blocks); err != nil {
				t.Fatal(err)
			}
			if renamed := got[6] == 200; (title == "renamed") != renamed {
				t.Errorf("title %q after bulk title %d", title, got[6])
			}
			if removed := got[4] == 204; (blocks == 0) != removed {
				t.Errorf("%d owner's relations left after unrelate %d", blocks, got[4])
			}
		})
	}
}

// TestTrashMatrix: the trash's cells. The tasks are the project owner's:
// trashing one, seeing one the owner trashed, restoring it, purging
// another. Who may delete a task may do all four; nobody else learns of
// the trash's tasks.
func TestTrashMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	globals := map[string][]auth.Role{"admin": {auth.RoleAdmin}, "manager": {auth.RoleManager}, "member": {auth.RoleMember}, "norole": nil}
	want := map[string]string{
		"admin/none": "204 200 200 204", "admin/viewer": "204 200 200 204",
		"manager/none": "403 404 404 404", "manager/member": "403 404 404 404", "manager/maintainer": "204 200 200 204",
		"member/none": "404 404 404 404", "member/viewer": "403 404 404 404", "member/member": "403 404 404 404",
		"member/maintainer": "204 200 200 204",
		"norole/maintainer": "403 403 403 403",
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, pr, _ := strings.Cut(name, "/")
			owner := who{sub: fresh("owner-"), roles: []auth.Role{auth.RoleMember}}
			key := fresh("t-")
			e.must(201, owner, "POST", "/projects", map[string]any{"key": key, "name": "T"})
			me := who{sub: fresh("me-"), roles: globals[g]}
			if pr != "none" {
				me.groups = []string{"/projects/" + key + "/" + pr}
			}
			ids := make([]string, 3)
			for i := range ids {
				ids[i] = decode[struct{ ID string }](t, e.must(201, owner, "POST", "/tasks", map[string]any{"title": fmt.Sprint("t", i), "project": key})).ID
			}
			e.must(204, owner, "DELETE", "/tasks/"+ids[1], nil)
			e.must(204, owner, "DELETE", "/tasks/"+ids[2], nil)
			seen := 404
			r := e.do(me, "GET", "/trash?limit=200", nil)
			if r.status != 200 {
				seen = r.status
			} else if strings.Contains(string(r.body), ids[1]) {
				seen = 200
			}
			got := []int{
				e.do(me, "DELETE", "/tasks/"+ids[0], nil).status,
				seen,
				e.do(me, "POST", "/tasks/"+ids[1]+"/restore", nil).status,
				e.do(me, "DELETE", "/trash/"+ids[2], nil).status,
			}
			if g := strings.Trim(fmt.Sprint(got), "[]"); g != w {
				t.Errorf("got %s, want %s (trash, see in trash, restore, purge)", g, w)
			}
			// What was refused is as it was.
			var live, trashed int
			if err := e.db.Primary.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE deleted_at IS NULL), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM tasks WHERE project = $1`, key).Scan(&live, &trashed); err != nil {
				t.Fatal(err)
			}
			wantLive, wantTrashed := 1, 2
			if got[0] == 204 {
				wantLive, wantTrashed = wantLive-1, wantTrashed+1
			}
			if got[2] == 200 {
				wantLive, wantTrashed = wantLive+1, wantTrashed-1
			}
			if got[3] == 204 {
				wantTrashed--
			}
			if live != wantLive || trashed != wantTrashed {
				t.Errorf("%d live, %d trashed; want %d, %d", live, trashed, wantLive, wantTrashed)
			}
		})
	}
}

// TestRestoreAfterLosingTheRole: who trashed a task but has lost the role
// that let them is told why they may not restore or purge it; the
// project's maintainer still may; and the project cannot be deleted
// while its trash holds the task.
func TestRestoreAfterLosingTheRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := who{sub: fresh("owner-"), roles: []auth.Role{auth.RoleMember}}
	former := who{sub: fresh("former-"), roles: []auth.Role{auth.RoleMember}}
	key := fresh("r-")
	e.must(201, owner, "POST", "/projects", map[string]any{"key": key, "name": "R"})
	e.must(201, owner, "PUT", "/projects/"+key+"/members/"+former.sub, map[string]any{"role": "maintainer"})
	tk := decode[struct{ ID string }](t, e.must(201, owner, "POST", "/tasks", map[string]any{"title": "x", "project": key})).ID
	e.must(204, former, "DELETE", "/tasks/"+tk, nil)
	e.must(204, owner, "DELETE", "/projects/"+key+"/members/"+former.sub, nil)
	r := e.must(409, former, "POST", "/tasks/"+tk+"/restore", nil)
	if !strings.Contains(string(r.body), "/restore-refused") {
		t.Errorf("restore by the former maintainer: %s", r.body)
	}
	e.must(403, former, "DELETE", "/trash/"+tk, nil)
	if p := decode[struct{ Items []struct{ ID string } }](t, e.must(200, former, "GET", "/trash", nil)); len(p.Items) != 1 || p.Items[0].ID != tk {
		t.Errorf("the former maintainer's trash %+v, want what they trashed", p.Items)
	}
	e.must(409, owner, "DELETE", "/projects/"+key, nil)
	e.must(200, owner, "POST", "/tasks/"+tk+"/restore", nil)
}
