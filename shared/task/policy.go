package task

import (
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
)

// forbidden is a request by a caller who may see the task but not do this
// to it. Callers who may not see a task get ErrNotFound instead, so a
// task's existence never leaks.
func forbidden(reason string) error { return errs.New(errs.Forbidden, "forbidden: "+reason, reason) }

// Anyone is every role that may use the task API at all.
var Anyone = []auth.Role{auth.RoleAdmin, auth.RoleManager, auth.RoleMember}

// seesAll: admins and managers read and list every task.
func seesAll(id auth.Identity) bool { return id.HasAny(auth.RoleAdmin, auth.RoleManager) }

func owns(id auth.Identity, t Task) bool { return t.OwnerID == id.Subject }

func assigned(id auth.Identity, t Task) bool {
	return t.AssigneeID != nil && *t.AssigneeID == id.Subject
}

// CanSee reports whether the caller may read t.
func CanSee(id auth.Identity, t Task) bool {
	return CanSeeParties(id, t.OwnerID, t.AssigneeID)
}

// CanSeeParties is CanSee for a task known by its owner and assignee
// alone, as the task cache serves it: reading depends on nothing else.
func CanSeeParties(id auth.Identity, ownerID string, assigneeID *string) bool {
	if seesAll(id) {
		return true
	}
	return id.Has(auth.RoleMember) && (ownerID == id.Subject || (assigneeID != nil && *assigneeID == id.Subject))
}

// Scope is the subject a caller's list is restricted to: "" for callers who
// see every task, else their own subject (owned or assigned tasks).
func Scope(id auth.Identity) string {
	if seesAll(id) {
		return ""
	}
	return id.Subject
}

// CheckCreate decides whether the caller may create t (owned by the caller).
// Every role may; an owner may assign its own task.
func CheckCreate(id auth.Identity, t Task) error {
	if !id.HasAny(Anyone...) {
		return forbidden("a taskfn role is required")
	}
	if t.OwnerID != id.Subject {
		return forbidden("tasks are created for the caller")
	}
	return nil
}

// CheckChange decides whether the caller may turn before into after.
//   - admin and manager: any change, including assignment;
//   - owner: any change to its own task;
//   - assignee (member): the status only; reassigning others' tasks is not theirs.
func CheckChange(id auth.Identity, before, after Task) error {
	if !CanSee(id, before) {
		return ErrNotFound
	}
	if seesAll(id) || owns(id, before) {
		return nil
	}
	probe := after
	probe.Status = before.Status
	if SameContent(before, probe) {
		return nil
	}
	return forbidden("members may only change the status of tasks assigned to them")
}

// CheckDelete decides whether the caller may delete t: admins any task,
// everyone else only the tasks they own.
func CheckDelete(id auth.Identity, t Task) error {
	if !CanSee(id, t) {
		return ErrNotFound
	}
	if id.Has(auth.RoleAdmin) || owns(id, t) {
		return nil
	}
	return forbidden("only the owner or an admin may delete a task")
}

// SameContent reports whether a and b agree on every writable field, as
// stored: due times at PostgreSQL's microsecond precision, nil and empty
// labels alike. Update writes nothing when it holds.
func SameContent(a, b Task) bool { return len(changedFields(a, b)) == 0 }

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Truncate(time.Microsecond).Equal(b.Truncate(time.Microsecond))
}

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
