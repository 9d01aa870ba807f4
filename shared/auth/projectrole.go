package auth

import "strings"

// ProjectRole is a caller's role in one project; a stronger role includes the weaker ones.
type ProjectRole uint8

const (
	NoProjectRole     ProjectRole = iota
	ProjectViewer                 // "viewer": read and list
	ProjectMember                 // "member": also create, change any task, delete own
	ProjectMaintainer             // "maintainer": also delete any task, edit the project, manage members
)

var projectRoleNames = [...]string{"", "viewer", "member", "maintainer"}

// ParseProjectRole reads a role's name.
func ParseProjectRole(s string) (ProjectRole, bool) {
	for i, n := range projectRoleNames[1:] {
		if n == s {
			return ProjectRole(i + 1), true
		}
	}
	return NoProjectRole, false
}

func (r ProjectRole) String() string {
	if int(r) < len(projectRoleNames) {
		return projectRoleNames[r]
	}
	return ""
}

// ValidProjectKey: lowercase ASCII letters, digits and '-', 2 to 32 characters.
func ValidProjectKey(key string) bool {
	if len(key) < 2 || len(key) > 32 {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// maxGroupRoles bounds the project roles read from one token; a token is at
// most maxTokenBytes, so this only caps the map a hostile one can build.
const maxGroupRoles = 1000

// GroupRoles reads the project roles from a token's groups: a group
// "<prefix><key>/<role>" (Keycloak's full group path) gives role in project
// key; the strongest wins when several name one project. Groups outside
// the prefix, with an invalid key or an unknown role are ignored: they are
// the realm's business, not a mistake of the caller's.
func GroupRoles(groups []string, prefix string) map[string]ProjectRole {
	var out map[string]ProjectRole
	for _, g := range groups {
		rest, ok := strings.CutPrefix(g, prefix)
		if !ok {
			continue
		}
		key, name, ok := strings.Cut(rest, "/")
		if !ok || !ValidProjectKey(key) {
			continue
		}
		role, ok := ParseProjectRole(name)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]ProjectRole{}
		}
		if len(out) >= maxGroupRoles && out[key] == NoProjectRole {
			continue
		}
		out[key] = max(out[key], role)
	}
	return out
}
