package webhook

import (
	"slices"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/project"
)

// Who may do what, in one place. A project's webhook is made and changed
// by a maintainer of the project (or an admin); a webhook of every
// project by an admin only. A webhook is seen, listed and deleted by its
// owner and by admins; to anyone else it does not exist (404).
//
// An event leaves on a webhook only while its owner may still see it: a
// project webhook's owner must still be the project's maintainer (or an
// admin) and see every project the event touches; an all-projects
// webhook's owner must still be an admin. The owner's global and group
// roles come from the snapshot of its token kept on the webhook (Owner),
// its API-managed roles from the members table, read at delivery time.

var (
	errAllProjects = errs.New(errs.Forbidden, "webhook: all projects needs an admin",
		"only an admin may subscribe to the events of every project: name a project")
	errMaintainer = errs.New(errs.Forbidden, "webhook: maintainer needed",
		"a project's webhooks are made and changed by its maintainers")
)

// CheckManage decides whether a may make or change a webhook of key (nil:
// every project). A project the caller cannot see is not found.
func CheckManage(a project.Access, key *string) error {
	if key == nil {
		if a.Admin() {
			return nil
		}
		return errAllProjects
	}
	switch {
	case a.Admin(), a.Role(*key) >= auth.ProjectMaintainer:
		return nil
	case a.SeesAll(), a.Role(*key) >= auth.ProjectViewer:
		return errMaintainer
	}
	return project.ErrNotFound
}

// CanSee says whether id may see webhook w: its owner and admins.
func CanSee(id auth.Identity, w Webhook) bool {
	return w.Owner == id.Subject || id.Has(auth.RoleAdmin)
}

// CanReceive says whether an event touching projects may go out on a
// webhook of key (nil: every project) whose owner has access a.
func CanReceive(a project.Access, key *string, touched []string) bool {
	if key == nil {
		return a.Admin()
	}
	if !a.Admin() && a.Role(*key) < auth.ProjectMaintainer {
		return false
	}
	if !slices.Contains(touched, *key) {
		return false
	}
	for _, p := range touched {
		if !a.SeesAll() && a.Role(p) < auth.ProjectViewer {
			return false
		}
	}
	return true
}

// Owner is what the delivery-time check knows of a webhook's owner: its
// subject, and the global and group roles its token carried when it last
// called a webhook route (the snapshot refreshed by Store.RefreshOwner).
type Owner struct {
	Subject    string
	Roles      []auth.Role
	GroupRoles map[string]auth.ProjectRole
}

// Identity is the owner as a token would show it.
func (o Owner) Identity() auth.Identity {
	return auth.Identity{Subject: o.Subject, Roles: o.Roles, ProjectRoles: o.GroupRoles}
}

// OwnerOf is the snapshot of id kept on its webhooks.
func OwnerOf(id auth.Identity) Owner {
	return Owner{Subject: id.Subject, Roles: id.Roles, GroupRoles: id.ProjectRoles}
}
