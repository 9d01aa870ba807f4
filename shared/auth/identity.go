// Package auth verifies Keycloak access tokens and carries the caller's
// identity through a request.
package auth

import (
	"context"
	"slices"
)

// Role is a Keycloak role taskfn knows; a token may carry it as a realm role
// (realm_access.roles) or as a client role of the API client
// (resource_access.<client>.roles).
type Role string

const (
	RoleAdmin   Role = "task-admin"
	RoleManager Role = "task-manager"
	RoleMember  Role = "task-member"
)

// Roles are every role taskfn knows: the routes any user of the API may
// call gate on them.
var Roles = []Role{RoleAdmin, RoleManager, RoleMember}

// Identity is a verified caller.
type Identity struct {
	Subject  string // token "sub": owner_id / assignee_id refer to it
	Username string // preferred_username, for logs only
	// Email is the token's "email" when its "email_verified" is true, else
	// empty: notifications must not go to an address nobody proved is theirs.
	Email string
	Roles []Role // only the roles taskfn knows, deduplicated
	// ProjectRoles are the roles the token's groups give, by project key;
	// shared and read-only.
	ProjectRoles map[string]ProjectRole
}

// GroupRole is the role the token's groups give in the project key.
func (id Identity) GroupRole(key string) ProjectRole { return id.ProjectRoles[key] }

// Has reports whether the caller holds role.
func (id Identity) Has(role Role) bool { return slices.Contains(id.Roles, role) }

// HasAny reports whether the caller holds at least one of roles.
func (id Identity) HasAny(roles ...Role) bool {
	for _, r := range roles {
		if id.Has(r) {
			return true
		}
	}
	return false
}

type identityKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity stored by the authentication middleware.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
