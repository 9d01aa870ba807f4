// Package field is a project's custom fields (issue #22,
// docs/custom-fields.md): the definitions, the values a task stores for
// them and how those are checked, shown and carried to another project,
// and the PostgreSQL store (the one place with SQL for custom_fields).
//
// A task stores its values in tasks.fields, a JSON object keyed by the
// definition's id as a decimal string: renaming a field rewrites no task,
// and a field deleted and made again under the same name never shows the
// old values. Clients name fields by name; Set translates both ways.
package field

import (
	"strconv"
	"strings"
	"time"
)

// Type is a field's type. The migration's CHECK repeats the list.
type Type string

// The nine types.
const (
	Text        Type = "text"
	Number      Type = "number"
	Date        Type = "date"
	DateTime    Type = "datetime"
	Checkbox    Type = "checkbox"
	URL         Type = "url"
	User        Type = "user" // a subject; whether it exists is not checked
	Select      Type = "select"
	MultiSelect Type = "multi_select"
)

// Types is every type, in the order the docs list them.
var Types = []Type{Text, Number, Date, DateTime, Checkbox, URL, User, Select, MultiSelect}

// Valid reports whether t is one of Types.
func (t Type) Valid() bool {
	for _, v := range Types {
		if t == v {
			return true
		}
	}
	return false
}

// HasOptions reports whether t's values are option ids.
func (t Type) HasOptions() bool { return t == Select || t == MultiSelect }

// Limits; the migration's CHECKs repeat MaxName.
const (
	MaxPerProject = 50     // live definitions per project
	MaxName       = 100    // characters of a field's name
	MaxOptions    = 100    // options of a select or multi_select
	MaxOptionName = 100    // characters of an option's name
	MaxText       = 10_000 // characters of a text value
	MaxURL        = 2048   // bytes of a url value
	MaxUser       = 255    // bytes of a user value (project.MaxSubject)
)

// DateLayout is a date value's stored form.
const DateLayout = "2006-01-02"

// DateTimeLayout is a datetime value's stored form: UTC, always six
// fractional digits, so that comparing two stored strings compares the
// times (range filters compare the jsonb strings).
const DateTimeLayout = "2006-01-02T15:04:05.000000Z"

// Option is one choice of a select or multi_select. The id is made by the
// server when the option is added and never changes; values name it, so
// renaming an option rewrites no task.
type Option struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Definition is one live row of custom_fields, and its API representation.
type Definition struct {
	ID        int64     `json:"id"`
	Project   string    `json:"project"`
	Name      string    `json:"name"`
	Type      Type      `json:"type"`
	Options   []Option  `json:"options"`
	Required  bool      `json:"required"`
	Position  int       `json:"position"`
	Version   int64     `json:"version"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Key is the key of d's values in tasks.fields: its id in decimal.
func (d Definition) Key() string { return strconv.FormatInt(d.ID, 10) }

// option returns the position and option of d whose id is id.
func (d Definition) option(id string) (int, bool) {
	for i, o := range d.Options {
		if o.ID == id {
			return i, true
		}
	}
	return 0, false
}

// optionByName returns the id of d's option named name, whatever the case.
func (d Definition) optionByName(name string) (string, bool) {
	for _, o := range d.Options {
		if strings.EqualFold(o.Name, name) {
			return o.ID, true
		}
	}
	return "", false
}

// Set is a project's live definitions, in position order (then id).
type Set []Definition

// ByName returns the definition named name, whatever the case.
func (s Set) ByName(name string) (Definition, bool) {
	for _, d := range s {
		if strings.EqualFold(d.Name, name) {
			return d, true
		}
	}
	return Definition{}, false
}

// ByID returns the definition whose id is id.
func (s Set) ByID(id int64) (Definition, bool) {
	for _, d := range s {
		if d.ID == id {
			return d, true
		}
	}
	return Definition{}, false
}

// byKey returns the definition whose stored key is key.
func (s Set) byKey(key string) (Definition, bool) {
	id, err := strconv.ParseInt(key, 10, 64)
	if err != nil || strconv.FormatInt(id, 10) != key {
		return Definition{}, false
	}
	return s.ByID(id)
}
