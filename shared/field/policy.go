package field

import (
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/project"
)

// Who may do what, in one place, decided from the caller's project.Access
// as projects decide it: whoever may see a project (any role in it, or a
// manager or admin) may read its field definitions; its maintainers and
// admins may make, change and delete them. To anyone else the project does
// not exist (404).

var errMaintainer = errs.New(errs.Forbidden, "field: maintainer needed",
	"a project's custom fields are defined by its maintainers")

// CheckSee decides whether a may read the definitions of project key.
func CheckSee(a project.Access, key string) error {
	if a.SeesAll() || a.Role(key) >= auth.ProjectViewer {
		return nil
	}
	return project.ErrNotFound
}

// CheckManage decides whether a may make, change or delete a definition
// of project key.
func CheckManage(a project.Access, key string) error {
	if a.Admin() || a.Role(key) >= auth.ProjectMaintainer {
		return nil
	}
	if err := CheckSee(a, key); err != nil {
		return err
	}
	return errMaintainer
}
