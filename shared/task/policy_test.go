package task

import (
	"errors"
	"fmt"
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/project"
)

// TestPolicyMatrix is every cell of global role × project role × relation
// to the task, for reading, a status change, any other change and
// deleting: y allowed, f forbidden (403), n not found (404). Project roles
// come from the token's groups here; the API-managed ones, which Access
// merges the same way, go through the routes' matrix in taskapi.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	const key = "team"
	globals := map[string][]auth.Role{
		"admin": {auth.RoleAdmin}, "manager": {auth.RoleManager}, "member": {auth.RoleMember}, "none": nil,
	}
	want := map[string]string{ // global/project role/relation: get status title delete
		"admin/none/owner": "yyyy", "admin/none/assignee": "yyyy", "admin/none/stranger": "yyyy",
		"admin/viewer/owner": "yyyy", "admin/viewer/assignee": "yyyy", "admin/viewer/stranger": "yyyy",
		"admin/member/owner": "yyyy", "admin/member/assignee": "yyyy", "admin/member/stranger": "yyyy",
		"admin/maintainer/owner": "yyyy", "admin/maintainer/assignee": "yyyy", "admin/maintainer/stranger": "yyyy",

		"manager/none/owner": "yyyy", "manager/none/assignee": "yyyf", "manager/none/stranger": "yyyf",
		"manager/viewer/owner": "yyyy", "manager/viewer/assignee": "yyyf", "manager/viewer/stranger": "yyyf",
		"manager/member/owner": "yyyy", "manager/member/assignee": "yyyf", "manager/member/stranger": "yyyf",
		"manager/maintainer/owner": "yyyy", "manager/maintainer/assignee": "yyyy", "manager/maintainer/stranger": "yyyy",

		// Owning a task grants nothing by itself: the project does.
		"member/none/owner": "nnnn", "member/none/assignee": "yyff", "member/none/stranger": "nnnn",
		"member/viewer/owner": "yfff", "member/viewer/assignee": "yyff", "member/viewer/stranger": "yfff",
		"member/member/owner": "yyyy", "member/member/assignee": "yyyf", "member/member/stranger": "yyyf",
		"member/maintainer/owner": "yyyy", "member/maintainer/assignee": "yyyy", "member/maintainer/stranger": "yyyy",

		"none/none/owner": "nnnn", "none/none/assignee": "nnnn", "none/none/stranger": "nnnn",
		"none/viewer/owner": "nnnn", "none/viewer/assignee": "nnnn", "none/viewer/stranger": "nnnn",
		"none/member/owner": "nnnn", "none/member/assignee": "nnnn", "none/member/stranger": "nnnn",
		"none/maintainer/owner": "nnnn", "none/maintainer/assignee": "nnnn", "none/maintainer/stranger": "nnnn",
	}
	for g, roles := range globals {
		for _, pr := range []auth.ProjectRole{auth.NoProjectRole, auth.ProjectViewer, auth.ProjectMember, auth.ProjectMaintainer} {
			for _, rel := range []string{"owner", "assignee", "stranger"} {
				prName := pr.String()
				if pr == auth.NoProjectRole {
					prName = "none"
				}
				name := g + "/" + prName + "/" + rel
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					id := auth.Identity{Subject: "me", Roles: roles}
					if pr != auth.NoProjectRole {
						id.ProjectRoles = map[string]auth.ProjectRole{key: pr}
					}
					a := project.Partial(id)
					tk := Task{Project: key, OwnerID: "other", Title: "t", Status: StatusTodo, Priority: PriorityLow}
					switch rel {
					case "owner":
						tk.OwnerID = "me"
					case "assignee":
						tk.AssigneeID = ptr("me")
					}
					status, title := tk, tk
					status.Status = StatusDone
					title.Title = "changed"
					seen := "n"
					if CanSee(a, tk) {
						seen = "y"
					}
					got := seen + code(CheckChange(a, tk, status)) + code(CheckChange(a, tk, title)) + code(CheckDelete(a, tk))
					if w, ok := want[name]; !ok || got != w {
						t.Errorf("got %s, want %s", got, w)
					}
				})
			}
		}
	}
}

// code is the matrix's letter for a decision.
func code(err error) string {
	switch {
	case err == nil:
		return "y"
	case errors.Is(err, ErrNotFound):
		return "n"
	case errs.KindOf(err) == errs.Forbidden:
		return "f"
	}
	return fmt.Sprintf("?%v", err)
}

func ptr[T any](v T) *T { return &v }

// TestPolicyProjects covers creating in and moving between projects: the
// caller needs the right on both sides, and a project it cannot see reads
// as one that does not exist.
func TestPolicyProjects(t *testing.T) {
	t.Parallel()
	member := func(roles map[string]auth.ProjectRole) project.Access {
		return project.Partial(auth.Identity{Subject: "me", Roles: []auth.Role{auth.RoleMember}, ProjectRoles: roles})
	}
	manager := project.Partial(auth.Identity{Subject: "me", Roles: []auth.Role{auth.RoleManager}})
	tk := func(key string) Task {
		return Task{Project: key, OwnerID: "me", Title: "t", Status: StatusTodo, Priority: PriorityLow}
	}
	roles := map[string]auth.ProjectRole{"a": auth.ProjectMember, "v": auth.ProjectViewer, "m": auth.ProjectMaintainer}
	tests := []struct {
		name     string
		a        project.Access
		from, to string // from "" is a create
		want     string // y, f, n (not found), p (no such project: 422)
	}{
		{"create in personal by default", member(nil), "", "", "y"},
		{"create in own personal by key", member(nil), "", "~me", "y"},
		{"create in another's personal", member(nil), "", "~you", "p"},
		{"create as member", member(roles), "", "a", "y"},
		{"create as maintainer", member(roles), "", "m", "y"},
		{"create as viewer", member(roles), "", "v", "f"},
		{"create in a project not mine", member(roles), "", "zz", "p"},
		{"create as manager anywhere", manager, "", "zz", "y"},
		{"move member to member", member(roles), "a", "m", "y"},
		{"move member to personal", member(roles), "a", "~me", "y"},
		{"move member to viewer", member(roles), "a", "v", "f"},
		{"move member to unknown", member(roles), "a", "zz", "p"},
		{"move out as viewer", member(roles), "v", "a", "f"},
		{"move out of invisible", member(roles), "zz", "a", "n"},
		{"move as manager", manager, "zz", "yy", "y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.from == "" {
				err = CheckCreate(tt.a, tk(tt.to))
			} else {
				err = CheckChange(tt.a, tk(tt.from), tk(tt.to))
			}
			got := code(err)
			if errors.Is(err, ErrNoProject) {
				got = "p"
			}
			if got != tt.want {
				t.Errorf("got %s (%v), want %s", got, err, tt.want)
			}
		})
	}
	if CheckCreate(project.Partial(auth.Identity{Subject: "x"}), tk("")) == nil {
		t.Error("a token without a taskfn role created a task")
	}
	if ScopeOf(manager) != nil {
		t.Error("a manager's list is scoped")
	}
	if s := ScopeOf(member(roles)); s == nil || s.Assignee != "me" || fmt.Sprint(s.Projects) != "[~me a m v]" {
		t.Errorf("member scope %+v", s)
	}
}
