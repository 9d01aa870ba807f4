package project

import (
	"strings"

	"github.com/taskfn/taskfn/shared/auth"
)

// ValidKey reports whether k can name a project: a team project's key, or
// a personal project's (PersonalPrefix and a subject). A route reading a
// key from its path answers ErrNotFound for any other.
func ValidKey(k string) bool {
	if s, ok := strings.CutPrefix(k, PersonalPrefix); ok {
		return ValidSubject(s)
	}
	return auth.ValidProjectKey(k)
}
