// Package project is projects and their members: the records, their
// validation, the PostgreSQL store (the one place with SQL for the
// projects and project_members tables) and Access, which decides a
// caller's role in a project from the token's groups and the members
// table.
package project

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/mergepatch"
	"github.com/taskfn/taskfn/shared/textfield"
)

// Limits of a project's fields; the migration's CHECK constraints repeat them.
const (
	MaxName        = 200
	MaxDescription = 10_000
	MaxSubject     = 255
)

// Project is one row of the projects table, and the API's representation
// of it with the caller's role added by the API.
type Project struct {
	Key         string    `json:"key"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Personal    bool      `json:"personal"` // a subject's personal project
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Version     int64     `json:"version"`
}

// Member is an API-managed member of a project. Members by Keycloak group
// live in tokens and are never listed here.
type Member struct {
	Subject   string    `json:"subject"`
	Role      string    `json:"role"`
	AddedBy   string    `json:"added_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PersonalPrefix starts a personal project's key: "~" and its subject. No
// key a client chooses can contain it (auth.ValidProjectKey), so the two
// never collide.
const PersonalPrefix = "~"

// PersonalKey is the key of subject's personal project.
func PersonalKey(subject string) string { return PersonalPrefix + subject }

// Errors the store returns; callers use errors.Is.
var (
	ErrNotFound = errs.New(errs.NotFound, "project not found", "")
	ErrExists   = errs.New(errs.Conflict, "project exists",
		"a project with this key exists; keys are unique and never reused while the project lives").
		Problem("project-exists", "Project exists")
	ErrNotEmpty = errs.New(errs.Conflict, "project not empty",
		"the project still holds tasks, archived and trashed ones included (the trash keeps them restorable); move, delete or purge them first").
		Problem("project-not-empty", "Project not empty")
	ErrPersonal = errs.New(errs.Conflict, "personal project",
		"a personal project belongs to its owner alone: it has no members and cannot be deleted").
		Problem("personal-project", "Personal project")
	ErrLastMaintainer = errs.New(errs.Conflict, "last maintainer",
		"this is the project's last maintainer; make someone else maintainer first").
		Problem("last-maintainer", "Last maintainer")
	ErrVersionMismatch = errs.New(errs.Precondition, "project version mismatch",
		"the project has changed since the version named in If-Match; fetch it again")
	ErrMemberNotFound = errs.New(errs.NotFound, "member not found", "")
)

// Patch is an RFC 7396 merge patch of a project's writable fields; create
// reads the same shape plus its key.
type Patch struct {
	Key         mergepatch.Field[string]
	Name        mergepatch.Field[string]
	Description mergepatch.Field[string]
}

var readOnly = []string{"personal", "created_by", "created_at", "updated_at", "version", "role"}

// ParsePatch decodes a JSON object into a Patch; unknown fields are a 400,
// wrong types and read-only fields a validation error naming them.
func ParsePatch(body []byte) (Patch, error) {
	var p Patch
	members, err := mergepatch.Object(body)
	if err != nil {
		return p, err
	}
	var bad errs.Fields
	for _, m := range members {
		var err error
		switch m.Name {
		case "key":
			err = mergepatch.Decode(m.Raw, &p.Key)
		case "name":
			err = mergepatch.Decode(m.Raw, &p.Name)
		case "description":
			err = mergepatch.Decode(m.Raw, &p.Description)
		default:
			if slices.Contains(readOnly, m.Name) {
				bad.Add(m.Name, "is read-only")
				continue
			}
			return p, errs.Syntax(fmt.Sprintf("unknown field %q", m.Name))
		}
		if err != nil {
			bad.Add(m.Name, err.Error())
		}
	}
	return p, bad.Err()
}

// Draft builds a new team project from a create request, created by creator.
func Draft(p Patch, creator string) (Project, error) {
	var f errs.Fields
	switch {
	case !p.Key.Set || p.Key.Null:
		f.Add("key", "is required")
	case !auth.ValidProjectKey(p.Key.Value):
		f.Add("key", "must be 2 to 32 lowercase letters, digits or '-'")
	}
	if !p.Name.Set {
		f.Add("name", "is required")
	}
	pr := Project{Key: p.Key.Value, CreatedBy: creator}
	pr, bad := p.apply(pr)
	for _, b := range bad {
		if b.Field == "name" && !p.Name.Set {
			continue
		}
		f.Add(b.Field, b.Detail)
	}
	return pr, f.Err()
}

// Apply returns cur with the patch merged in, or the field errors of the
// result. The key is immutable.
func (p Patch) Apply(cur Project) (Project, error) {
	var f errs.Fields
	if p.Key.Set && (p.Key.Null || p.Key.Value != cur.Key) {
		f.Add("key", "is immutable")
	}
	next, bad := p.apply(cur)
	for _, b := range bad {
		f.Add(b.Field, b.Detail)
	}
	return next, f.Err()
}

func (p Patch) apply(cur Project) (Project, []errs.FieldError) {
	t := cur
	var bad []errs.FieldError
	add := func(f, d string) { bad = append(bad, errs.FieldError{Field: f, Detail: d}) }
	if p.Name.Set {
		if p.Name.Null {
			add("name", "must not be null")
		}
		t.Name = p.Name.Value
	}
	if p.Description.Set {
		t.Description = p.Description.Value // null clears it
	}
	if p := textfield.Line(t.Name, MaxName); p != "" {
		add("name", p)
	}
	if p := textfield.Text(t.Description, MaxDescription); p != "" {
		add("description", p)
	}
	return t, dedupe(bad)
}

// dedupe keeps a field's first error: a null name is also blank.
func dedupe(bad []errs.FieldError) []errs.FieldError {
	var out []errs.FieldError
	for _, b := range bad {
		if !slices.ContainsFunc(out, func(o errs.FieldError) bool { return o.Field == b.Field }) {
			out = append(out, b)
		}
	}
	return out
}

// ParseMember reads a PUT member body, {"role": "viewer"|"member"|"maintainer"}.
func ParseMember(body []byte) (auth.ProjectRole, error) {
	members, err := mergepatch.Object(body)
	if err != nil {
		return auth.NoProjectRole, err
	}
	var role mergepatch.Field[string]
	for _, m := range members {
		if m.Name != "role" {
			if m.Name == "subject" || m.Name == "added_by" || m.Name == "updated_at" {
				return auth.NoProjectRole, errs.Validation(errs.FieldError{Field: m.Name, Detail: "is read-only"})
			}
			return auth.NoProjectRole, errs.Syntax(fmt.Sprintf("unknown field %q", m.Name))
		}
		if err := mergepatch.Decode(m.Raw, &role); err != nil {
			return auth.NoProjectRole, errs.Validation(errs.FieldError{Field: "role", Detail: err.Error()})
		}
	}
	if !role.Set || role.Null {
		return auth.NoProjectRole, errs.Validation(errs.FieldError{Field: "role", Detail: "is required"})
	}
	r, ok := auth.ParseProjectRole(role.Value)
	if !ok {
		return auth.NoProjectRole, errs.Validation(errs.FieldError{Field: "role", Detail: "must be one of viewer, member, maintainer"})
	}
	return r, nil
}

// ValidSubject reports whether s can name a member: a Keycloak subject of
// 1 to MaxSubject bytes of printable text.
func ValidSubject(s string) bool {
	return strings.TrimSpace(s) != "" && len(s) <= MaxSubject && utf8.ValidString(s) && !textfield.HasControl(s, false)
}
