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
