package task

import (
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/project"
)

// forbidden is a request by a caller who may see the task but not do this
// to it. Callers who may not see a task get ErrNotFound instead, so a
// task's existence never leaks.
func forbidden(reason string) error { return errs.New(errs.Forbidden, "forbidden: "+reason, reason) }

// Anyone is every role that may use the task API at all.
var Anyone = auth.Roles

// The policy, in one place. Global roles: task-admin does anything
// everywhere; task-manager reads and changes every project's tasks;
// task-member acts through its project roles, and always sees and may
// set the status of the tasks assigned to it, wherever they are. Project
// roles: viewer reads and lists, member also creates and changes any task
// and deletes its own, maintainer also deletes any task.

func assigned(subject string, assigneeID *string) bool {
	return assigneeID != nil && *assigneeID == subject
}

// CanSee reports whether the caller may read t.
func CanSee(a project.Access, t Task) bool { return CanSeeIn(a, t.Project, t.AssigneeID) }

// CanSeeIn is CanSee for a task known by its project and assignee alone,
// as the task cache serves it: reading depends on nothing else. With a
// Partial access it may answer false where the full one answers true,
// never the reverse.
func CanSeeIn(a project.Access, key string, assigneeID *string) bool {
	if a.SeesAll() {
		return true
	}
	if !a.ID.Has(auth.RoleMember) {
		return false
	}
	return a.Role(key) >= auth.ProjectViewer || assigned(a.ID.Subject, assigneeID)
}

// Scope is the tasks a caller may list short of all: those of Projects
// and those assigned to Assignee. The zero Scope is none.
type Scope struct {
	Projects []string // keys, personal first (project.Access.Visible)
	Assignee string
}

// ScopeOf is a's list scope: nil for callers who see every task.
func ScopeOf(a project.Access) *Scope {
	if a.SeesAll() {
		return nil
	}
	if !a.ID.Has(auth.RoleMember) {
		return &Scope{}
	}
	return &Scope{Projects: a.Visible(), Assignee: a.ID.Subject}
}

// canWrite reports whether the caller may add and change tasks in key.
func canWrite(a project.Access, key string) bool {
	return a.SeesAll() || a.Role(key) >= auth.ProjectMember
}

// intoProject decides whether the caller may put a task into key:
// ErrNoProject when it may not even see the project (as if it did not
// exist), forbidden when it only views it.
func intoProject(a project.Access, key string) error {
	switch {
	case canWrite(a, key):
		return nil
	case a.Role(key) == auth.ProjectViewer:
		return forbidden("viewers of a project may not add tasks to it")
	}
	return ErrNoProject
}

// CheckCreate decides whether the caller may create t, owned by the
// caller, in t.Project ("" is its personal project).
func CheckCreate(a project.Access, t Task) error {
	if !a.ID.HasAny(Anyone...) {
		return forbidden("a taskfn role is required")
	}
	if t.OwnerID != a.ID.Subject {
		return forbidden("tasks are created for the caller")
	}
	if t.Project == "" {
		return nil
	}
	return intoProject(a, t.Project)
}

// CheckChange decides whether the caller may turn before into after.
//   - admin, manager and the project's members and maintainers: any change;
//   - moving to another project also needs that right in the target;
//   - the assignee: the status only;
//   - a viewer: nothing.
func CheckChange(a project.Access, before, after Task) error {
	if !CanSee(a, before) {
		return ErrNotFound
	}
	if after.Project != before.Project {
		if !canWrite(a, before.Project) {
			return forbidden("moving a task needs the member role in its project")
		}
		return intoProject(a, after.Project)
	}
	if canWrite(a, before.Project) {
		return nil
	}
	if assigned(a.ID.Subject, before.AssigneeID) {
		probe := after
		probe.Status = before.Status
		if SameContent(before, probe) {
			return nil
		}
		return forbidden("the assignee may only change the status of a task outside its projects")
	}
	return forbidden("viewers of a project may not change its tasks")
}

// CheckDelete decides whether the caller may delete t: admins and the
// project's maintainers any task; its members and managers the tasks they
// own.
func CheckDelete(a project.Access, t Task) error {
	if !CanSee(a, t) {
		return ErrNotFound
	}
	if a.Admin() || a.Role(t.Project) >= auth.ProjectMaintainer {
		return nil
	}
	if t.OwnerID == a.ID.Subject && canWrite(a, t.Project) {
		return nil
	}
	return forbidden("only the owner, a maintainer of the project or an admin may delete a task")
}

// CheckRelate decides whether the caller may add or remove relations of
// a task of project key assigned to assigneeID: whoever may change it.
func CheckRelate(a project.Access, key string, assigneeID *string) error {
	if !CanSeeIn(a, key, assigneeID) {
		return ErrNotFound
	}
	if canWrite(a, key) {
		return nil
	}
	return forbidden("relating tasks needs the member role in the task's project")
}

// CheckComment decides whether the caller may comment on a task of
// project key assigned to assigneeID: whoever may change it, and its
// assignee.
func CheckComment(a project.Access, key string, assigneeID *string) error {
	if !CanSeeIn(a, key, assigneeID) {
		return ErrNotFound
	}
	if canWrite(a, key) || assigned(a.ID.Subject, assigneeID) {
		return nil
	}
	return forbidden("viewers of a project may not comment on its tasks")
}

// CheckCommentEdit decides whether the caller may change a comment by
// author on a task it sees: only its author.
func CheckCommentEdit(a project.Access, author string) error {
	if a.ID.Subject != author {
		return forbidden("only its author may change a comment")
	}
	return nil
}

// CheckCommentDelete decides whether the caller may delete a comment by
// author on a task of project key it sees: its author, a maintainer of the
// project or an admin.
func CheckCommentDelete(a project.Access, key, author string) error {
	if a.ID.Subject == author || a.Admin() || a.Role(key) >= auth.ProjectMaintainer {
		return nil
	}
	return forbidden("only its author, a maintainer of the project or an admin may delete a comment")
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

// TrashScopeOf is the trash a caller sees: what it trashed and what it
// may delete (CheckDelete) — for admins everything.
func TrashScopeOf(a project.Access) TrashScope {
	if a.Admin() {
		return TrashScope{All: true}
	}
	s := TrashScope{Subject: a.ID.Subject, Maintains: []string{}, Writes: []string{}, OwnAnywhere: a.SeesAll()}
	for _, k := range a.Visible() {
		switch r := a.Role(k); {
		case r >= auth.ProjectMaintainer:
			s.Maintains = append(s.Maintains, k)
		case r >= auth.ProjectMember:
			s.Writes = append(s.Writes, k)
		}
	}
	return s
}

// CheckRestore decides whether the caller may take t out of the trash:
// whoever may delete it now. The one who trashed it but may no longer
// delete it (its project's role is gone) is told so; anyone else finds
// no such task in the trash.
func CheckRestore(a project.Access, t Trashed) error {
	if CheckDelete(a, t.Task) == nil {
		return nil
	}
	if t.DeletedBy == a.ID.Subject && a.ID.Subject != "" {
		return ErrRestoreRefused
	}
	return ErrNotTrashed
}

// CheckPurge decides whether the caller may delete t from the trash for
// good: whoever may delete it.
func CheckPurge(a project.Access, t Trashed) error {
	if CheckDelete(a, t.Task) == nil {
		return nil
	}
	if t.DeletedBy == a.ID.Subject && a.ID.Subject != "" {
		return forbidden("only the owner, a maintainer of the project or an admin may purge a task")
	}
	return ErrNotTrashed
}
