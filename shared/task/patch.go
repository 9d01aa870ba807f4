package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/mergepatch"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/recurrence"
	"github.com/taskfn/taskfn/shared/textfield"
)

// Limits of a task's fields; the migrations' CHECK constraints repeat them.
const (
	MaxTitle       = 200
	MaxDescription = 10_000
	MaxLabels      = 20
	MaxLabel       = 50
	MaxSubject     = 255
)

// Patch is an RFC 7396 merge patch of a task's writable fields. Create uses
// the same shape, applied to the defaults.
type Patch struct {
	Project     mergepatch.Field[string]
	Title       mergepatch.Field[string]
	Description mergepatch.Field[string]
	Status      mergepatch.Field[Status]
	Priority    mergepatch.Field[Priority]
	DueAt       mergepatch.Field[time.Time]
	AssigneeID  mergepatch.Field[string]
	Labels      mergepatch.Field[[]string]
	Archived    mergepatch.Field[bool]
	// Recurrence null ends the series; RecurrenceTZ null is UTC again;
	// Reminders null is none.
	Recurrence   mergepatch.Field[string]
	RecurrenceTZ mergepatch.Field[string]
	Reminders    mergepatch.Field[[]string]
	// Fields is a merge patch of the custom field values by name, each
	// value raw (null clears it); nil when the body has no fields. The
	// store validates it against the project's definitions.
	Fields map[string]json.RawMessage
}

// readOnly fields belong to the server; naming them is a validation error
// rather than an unknown field, so the client learns why.
var readOnly = []string{"id", "owner_id", "series_id", "archived_at", "created_at", "updated_at", "version"}

// ParsePatch decodes a JSON object into a Patch. Malformed JSON and unknown
// fields give an errs.Invalid error; wrong types and read-only fields give
// an *errs.ValidationError listing the offending fields. body is what
// httpx.ReadBody returned, which bounds what decoding it can cost: at most
// 1 MiB and httpx.MaxJSONTokens tokens.
func ParsePatch(body []byte) (Patch, error) {
	var p Patch
	members, err := mergepatch.Object(body)
	if err != nil {
		return p, err
	}
	var bad errs.Fields
	for _, m := range members {
		k, raw := m.Name, m.Raw
		var err error
		switch k {
		case "project":
			err = mergepatch.Decode(raw, &p.Project)
		case "title":
			err = mergepatch.Decode(raw, &p.Title)
		case "description":
			err = mergepatch.Decode(raw, &p.Description)
		case "status":
			err = mergepatch.Decode(raw, &p.Status)
		case "priority":
			err = mergepatch.Decode(raw, &p.Priority)
		case "due_at":
			err = mergepatch.Decode(raw, &p.DueAt)
		case "assignee_id":
			err = mergepatch.Decode(raw, &p.AssigneeID)
		case "labels":
			err = mergepatch.Decode(raw, &p.Labels)
		case "archived":
			err = mergepatch.Decode(raw, &p.Archived)
		case "recurrence":
			err = mergepatch.Decode(raw, &p.Recurrence)
		case "recurrence_tz":
			err = mergepatch.Decode(raw, &p.RecurrenceTZ)
		case "reminders":
			err = mergepatch.Decode(raw, &p.Reminders)
		case "fields":
			p.Fields, err = parseFields(raw)
		default:
			if slices.Contains(readOnly, k) {
				bad.Add(k, "is read-only")
				continue
			}
			return p, errs.Syntax(fmt.Sprintf("unknown field %q", k))
		}
		if err != nil {
			bad.Add(k, err.Error())
		}
	}
	return p, bad.Err()
}

// parseFields reads the fields member: an object of values by field
// name, each checked against its definition later, by the store.
func parseFields(raw json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("must be an object of values by field name; a field set to null is cleared")
	}
	return m, nil
}

// Draft builds a new task from a create request: the patch applied to the
// defaults, owned by owner. The result is validated.
func Draft(p Patch, owner string) (Task, error) {
	t := Task{
		OwnerID:  owner,
		Status:   StatusTodo,
		Priority: PriorityMedium,
		Labels:   []string{},
		// The defaults a new row gets from the table, too.
		RecurrenceTZ: DefaultRecurrenceTZ,
		Reminders:    []string{},
	}
	t, bad := p.Apply(t)
	var f errs.Fields
	if !p.Title.Set {
		// "required" says it all; drop the "blank" that validation adds.
		f.Add("title", "is required")
		bad = slices.DeleteFunc(bad, func(fe errs.FieldError) bool { return fe.Field == "title" })
	}
	for _, b := range bad {
		f.Add(b.Field, b.Detail)
	}
	if err := f.Err(); err != nil {
		return Task{}, err
	}
	return t, nil
}

// Apply returns cur with the patch merged in, and the field errors of the
// result (nil when it is valid).
func (p Patch) Apply(cur Task) (Task, []errs.FieldError) {
	t := cur
	t.Labels = slices.Clone(cur.Labels)
	t.Reminders = slices.Clone(cur.Reminders)
	var bad []errs.FieldError
	notNull := func(name string) { bad = append(bad, errs.FieldError{Field: name, Detail: "must not be null"}) }
	if p.Project.Set {
		if p.Project.Null {
			notNull("project")
		} else {
			t.Project = p.Project.Value
		}
	}
	if p.Title.Set {
		if p.Title.Null {
			notNull("title")
		}
		t.Title = p.Title.Value
	}
	if p.Description.Set {
		t.Description = p.Description.Value // null clears it
	}
	if p.Status.Set {
		if p.Status.Null {
			notNull("status")
		} else {
			t.Status = p.Status.Value
		}
	}
	if p.Priority.Set {
		if p.Priority.Null {
			notNull("priority")
		} else {
			t.Priority = p.Priority.Value
		}
	}
	if p.DueAt.Set {
		if p.DueAt.Null {
			t.DueAt = nil
		} else {
			d := p.DueAt.Value.UTC().Truncate(time.Microsecond) // PostgreSQL keeps µs
			t.DueAt = &d
		}
	}
	if p.AssigneeID.Set {
		if p.AssigneeID.Null {
			t.AssigneeID = nil
		} else {
			a := p.AssigneeID.Value
			t.AssigneeID = &a
		}
	}
	if p.Labels.Set {
		t.Labels = slices.Clone(p.Labels.Value)
		if t.Labels == nil {
			t.Labels = []string{}
		}
	}
	if p.Archived.Set {
		switch {
		case p.Archived.Null:
			notNull("archived")
		case p.Archived.Value && !t.Archived:
			// The time is the store's to set (now(), as it writes); this
			// one only stands for it until then.
			now := time.Now().UTC().Truncate(time.Microsecond)
			t.Archived, t.ArchivedAt = true, &now
		case !p.Archived.Value:
			t.Archived, t.ArchivedAt = false, nil
		}
	}
	if p.Recurrence.Set {
		if p.Recurrence.Null {
			t.Recurrence = nil
		} else {
			r := p.Recurrence.Value
			t.Recurrence = &r
		}
	}
	if p.RecurrenceTZ.Set {
		t.RecurrenceTZ = p.RecurrenceTZ.Value
		if p.RecurrenceTZ.Null {
			t.RecurrenceTZ = DefaultRecurrenceTZ
		}
	}
	if p.Reminders.Set {
		t.Reminders = make([]string, len(p.Reminders.Value))
		for i, r := range p.Reminders.Value {
			t.Reminders[i] = r
			if norm, problem := ParseReminder(r); problem == "" {
				t.Reminders[i] = norm
			}
		}
	}
	if p.Fields != nil {
		t.FieldsPatch = p.Fields
	}
	if len(bad) > 0 {
		return t, bad
	}
	return t, Validate(t)
}

// DefaultRecurrenceTZ is the zone of a task that names none.
const DefaultRecurrenceTZ = "UTC"

// Validate returns the field errors of t's writable fields: at most one a
// field and one a label, so never more than errs.MaxFieldErrors. Labels
// beyond MaxLabels are one error, and then none is checked: each would
// only add an error to a request that must change anyway.
func Validate(t Task) []errs.FieldError {
	var bad []errs.FieldError
	add := func(f, d string) { bad = append(bad, errs.FieldError{Field: f, Detail: d}) }

	if p := textfield.Line(t.Title, MaxTitle); p != "" {
		add("title", p)
	}
	if p := textfield.Text(t.Description, MaxDescription); p != "" {
		add("description", p)
	}
	if t.Project != "" && !ValidProject(t.Project) {
		add("project", "must be a project key: 2 to 32 lowercase letters, digits or '-'")
	}
	if !t.Status.Valid() {
		add("status", "must be one of todo, in_progress, blocked, done, cancelled")
	}
	if !t.Priority.Valid() {
		add("priority", "must be one of low, medium, high, urgent")
	}
	if t.AssigneeID != nil {
		if msg := subjectProblem(*t.AssigneeID); msg != "" {
			add("assignee_id", msg)
		}
	}
	if t.Recurrence != nil || t.RecurrenceTZ != DefaultRecurrenceTZ {
		rule := ""
		if t.Recurrence != nil {
			rule = *t.Recurrence
		}
		for _, p := range recurrence.Check(rule, t.RecurrenceTZ) {
			if p.Field == "recurrence" && t.Recurrence == nil {
				continue // a zone alone is fine: it waits for a rule
			}
			add(p.Field, p.Detail)
		}
		if t.Recurrence != nil && t.DueAt == nil {
			add("due_at", "is required with a recurrence, which it anchors")
		}
	}
	bad = append(bad, validateReminders(t)...)
	if len(t.Labels) > MaxLabels {
		add("labels", fmt.Sprintf("must hold at most %d labels", MaxLabels))
		return bad
	}
	seen := make(map[string]bool, len(t.Labels))
	for i, l := range t.Labels {
		f := fmt.Sprintf("labels[%d]", i)
		if p := textfield.Line(l, MaxLabel); p != "" {
			add(f, p)
		} else if seen[l] {
			add(f, "is a duplicate")
		}
		seen[l] = true
	}
	return bad
}

// validateReminders checks t's reminders: at most one error each, and
// one for too many, then none checked.
func validateReminders(t Task) []errs.FieldError {
	switch {
	case len(t.Reminders) == 0:
		return nil
	case len(t.Reminders) > MaxReminders:
		return []errs.FieldError{{Field: "reminders", Detail: fmt.Sprintf("must hold at most %d reminders", MaxReminders)}}
	case t.DueAt == nil:
		return []errs.FieldError{{Field: "reminders", Detail: "need a due_at, before which they fire"}}
	}
	var bad []errs.FieldError
	seen := make(map[string]bool, len(t.Reminders))
	for i, r := range t.Reminders {
		f := fmt.Sprintf("reminders[%d]", i)
		norm, problem := ParseReminder(r)
		switch {
		case problem != "":
			bad = append(bad, errs.FieldError{Field: f, Detail: problem})
		case seen[norm]:
			bad = append(bad, errs.FieldError{Field: f, Detail: "is a duplicate"})
		}
		seen[norm] = true
	}
	return bad
}

// ValidProject: a team project's key, or a personal project's ("~" and
// its subject).
func ValidProject(key string) bool {
	if s, ok := strings.CutPrefix(key, project.PersonalPrefix); ok {
		return subjectProblem(s) == ""
	}
	return auth.ValidProjectKey(key)
}

// subjectProblem checks a Keycloak subject (user id) used as assignee.
func subjectProblem(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "must not be blank; use null to unassign"
	case len(s) > MaxSubject:
		return fmt.Sprintf("must be at most %d bytes", MaxSubject)
	case textfield.HasControl(s, false):
		return "must not contain control characters"
	}
	return ""
}
