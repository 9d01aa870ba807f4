package task

import (
	"errors"
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
)

func TestPolicy(t *testing.T) {
	t.Parallel()
	member := auth.Identity{Subject: "m", Roles: []auth.Role{auth.RoleMember}}
	manager := auth.Identity{Subject: "g", Roles: []auth.Role{auth.RoleManager}}
	admin := auth.Identity{Subject: "a", Roles: []auth.Role{auth.RoleAdmin}}
	nobody := auth.Identity{Subject: "n"}
	m := "m"
	owned := Task{OwnerID: "m", Title: "t", Status: StatusTodo}
	assigned := Task{OwnerID: "o", AssigneeID: &m, Title: "t", Status: StatusTodo}
	foreign := Task{OwnerID: "o", Title: "t", Status: StatusTodo}
	with := func(t Task, f func(*Task)) Task { f(&t); return t }
	status := func(t *Task) { t.Status = StatusDone }
	title := func(t *Task) { t.Title = "other" }
	reassign := func(t *Task) { x := "x"; t.AssigneeID = &x }

	tests := []struct {
		name   string
		id     auth.Identity
		before Task
		change func(*Task)
		want   error // nil, ErrNotFound, or errForbidden
	}{
		{"member owner changes anything", member, owned, title, nil},
		{"member owner reassigns own task", member, owned, reassign, nil},
		{"member assignee changes status", member, assigned, status, nil},
		{"member assignee changes title", member, assigned, title, errForbidden},
		{"member assignee reassigns", member, assigned, reassign, errForbidden},
		{"member stranger", member, foreign, status, ErrNotFound},
		{"manager any", manager, foreign, reassign, nil},
		{"admin any", admin, foreign, title, nil},
		{"no role", nobody, owned, status, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckChange(tc.id, tc.before, with(tc.before, tc.change))
			check(t, err, tc.want)
		})
	}
	deletes := []struct {
		name string
		id   auth.Identity
		t    Task
		want error
	}{
		{"owner", member, owned, nil},
		{"assignee", member, assigned, errForbidden},
		{"stranger", member, foreign, ErrNotFound},
		{"manager not owner", manager, foreign, errForbidden},
		{"admin", admin, foreign, nil},
	}
	for _, tc := range deletes {
		t.Run("delete/"+tc.name, func(t *testing.T) {
			t.Parallel()
			check(t, CheckDelete(tc.id, tc.t), tc.want)
		})
	}
	if Scope(member) != "m" || Scope(manager) != "" || Scope(admin) != "" {
		t.Error("scope")
	}
}

var errForbidden = errors.New("want forbidden")

func check(t *testing.T, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("err %v, want nil", err)
	case want == errForbidden && errs.KindOf(err) != errs.Forbidden:
		t.Fatalf("err %v, want forbidden", err)
	case want == ErrNotFound && !errors.Is(err, ErrNotFound):
		t.Fatalf("err %v, want not found", err)
	}
}
