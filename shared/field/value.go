package field

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/textfield"
)

// Stored forms of the values (docs/custom-fields.md):
//
//	text          a string, 1 to MaxText characters
//	number        a JSON number, read as a float64 (finite; integers exact
//	              up to 2^53) and written back in Go's shortest form
//	date          "YYYY-MM-DD", a day that exists
//	datetime      UTC in DateTimeLayout (an offset is converted, digits past
//	              the microsecond dropped)
//	checkbox      true or false
//	url           an absolute http or https URL, at most MaxURL bytes, as given
//	user          a subject, 1 to MaxUser bytes
//	select        an option id
//	multi_select  an array of distinct option ids in the options' order
//	              (possibly empty)

// Apply merges patch, a JSON merge patch of a task's values keyed by field
// name (null clears a value), into stored, a task's values keyed by
// definition id, and returns the new stored values. Every value is
// checked against its definition, and the result against the required
// fields: on create every required field must have a value; on a later
// write a required field may not be cleared (one the task lacks because it
// was defined after the task was made may stay missing until it is set).
// Values of definitions not in s (deleted ones) are dropped. The error is
// one *errs.ValidationError naming each bad field as "fields.<name>".
func (s Set) Apply(stored, patch map[string]json.RawMessage, create bool) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(stored)+len(patch))
	for k, v := range stored {
		if _, ok := s.byKey(k); ok {
			out[k] = v
		}
	}
	var bad errs.Fields
	names := make([]string, 0, len(patch))
	for n := range patch {
		names = append(names, n)
	}
	slices.Sort(names) // a stable error list
	touched := map[int64]string{}
	for _, name := range names {
		d, ok := s.ByName(name)
		if !ok {
			bad.Add(errField(name), "is not a field of this project")
			continue
		}
		if first, dup := touched[d.ID]; dup {
			bad.Add(errField(name), fmt.Sprintf("names the same field as %q", first))
			continue
		}
		touched[d.ID] = name
		raw := bytes.TrimSpace(patch[name])
		if bytes.Equal(raw, []byte("null")) {
			delete(out, d.Key())
			continue
		}
		v, problem := d.Normalize(raw)
		if problem != "" {
			bad.Add(errField(name), problem)
			continue
		}
		out[d.Key()] = v
	}
	for _, d := range s {
		if !d.Required {
			continue
		}
		if _, ok := out[d.Key()]; ok {
			continue
		}
		name, inPatch := touched[d.ID]
		switch {
		case create && !inPatch:
			bad.Add(errField(d.Name), "is required")
		case inPatch:
			bad.Add(errField(name), "is required: it cannot be cleared")
		}
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// errField names a field's error, its name cut to what a name can be: the
// name came from the client and may be anything.
func errField(name string) string {
	if utf8.RuneCountInString(name) > MaxName {
		name = string([]rune(name)[:MaxName]) + "…"
	}
	return "fields." + name
}

// Present returns stored's values keyed by field name, for a task's JSON
// and its events: the values of definitions not in s (deleted, or of
// another project) are not shown. Never nil.
func (s Set) Present(stored map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(stored))
	for _, d := range s {
		if v, ok := stored[d.Key()]; ok {
			out[d.Name] = v
		}
	}
	return out
}

// Keep carries stored, a task's values under s, to the project whose set
// is other (a task moved): a value is kept when other has a field of the
// same name (whatever the case) and type, re-keyed to other's id; a select
// keeps its option when other's field has an option of the same name,
// and a multi_select keeps the options that match (in other's order).
// dropped names, in s's order, the fields of s whose value was not kept
// whole: no such field in other, another type, or an option not matched.
func (s Set) Keep(stored map[string]json.RawMessage, other Set) (kept map[string]json.RawMessage, dropped []string) {
	kept = map[string]json.RawMessage{}
	for _, d := range s {
		v, ok := stored[d.Key()]
		if !ok {
			continue
		}
		t, ok := other.ByName(d.Name)
		if !ok || t.Type != d.Type {
			dropped = append(dropped, d.Name)
			continue
		}
		switch d.Type {
		case Select:
			var id string
			if json.Unmarshal(v, &id) != nil {
				dropped = append(dropped, d.Name)
				continue
			}
			to, ok := mapOption(d, t, id)
			if !ok {
				dropped = append(dropped, d.Name)
				continue
			}
			kept[t.Key()], _ = json.Marshal(to)
		case MultiSelect:
			var ids []string
			if json.Unmarshal(v, &ids) != nil {
				dropped = append(dropped, d.Name)
				continue
			}
			var to []string
			for _, id := range ids {
				if o, ok := mapOption(d, t, id); ok && !slices.Contains(to, o) {
					to = append(to, o)
				}
			}
			if len(to) < len(ids) {
				dropped = append(dropped, d.Name)
			}
			if len(to) == 0 && len(ids) > 0 {
				continue // nothing matched: no value, rather than an empty one
			}
			kept[t.Key()] = marshalIDs(t, to)
		default:
			kept[t.Key()] = v
		}
	}
	return kept, dropped
}

// mapOption returns the id of to's option named as from's option id.
func mapOption(from, to Definition, id string) (string, bool) {
	i, ok := from.option(id)
	if !ok {
		return "", false
	}
	return to.optionByName(from.Options[i].Name)
}

// marshalIDs is ids as a multi_select of d stores them: in d's options'
// order.
func marshalIDs(d Definition, ids []string) json.RawMessage {
	slices.SortStableFunc(ids, func(a, b string) int {
		i, _ := d.option(a)
		j, _ := d.option(b)
		return i - j
	})
	if ids == nil {
		ids = []string{}
	}
	b, _ := json.Marshal(ids)
	return b
}

// Normalize checks raw, a value a client sent for d (not null), and
// returns its stored form, or what is wrong with it.
func (d Definition) Normalize(raw json.RawMessage) (json.RawMessage, string) {
	switch d.Type {
	case Number:
		return number(raw)
	case Checkbox:
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return nil, "must be true or false"
		}
		return marshal(b)
	case MultiSelect:
		return d.multi(raw)
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, "must be a string"
	}
	if !pg.TextOK(s) {
		return nil, "must be valid UTF-8 without NUL"
	}
	if s == "" {
		return nil, "must not be empty (null clears the field)"
	}
	switch d.Type {
	case Text:
		if p := textfield.Text(s, MaxText); p != "" {
			return nil, p
		}
	case Date:
		t, err := time.Parse(DateLayout, s)
		if err != nil || t.Format(DateLayout) != s {
			return nil, "must be a date that exists, YYYY-MM-DD"
		}
	case DateTime:
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, "must be an RFC 3339 date-time, e.g. 2026-12-01T17:00:00Z"
		}
		t = t.UTC()
		if t.Year() < 1 || t.Year() > 9999 {
			return nil, "must be between the years 0001 and 9999"
		}
		s = t.Format(DateTimeLayout)
	case URL:
		if p := checkURL(s); p != "" {
			return nil, p
		}
	case User:
		if !project.ValidSubject(s) {
			return nil, fmt.Sprintf("must be a subject of 1 to %d bytes of printable text", MaxUser)
		}
	case Select:
		if _, ok := d.option(s); !ok {
			return nil, "must be the id of one of the field's options"
		}
	default:
		return nil, "has an unknown type"
	}
	return marshal(s)
}

func number(raw json.RawMessage) (json.RawMessage, string) {
	const want = "must be a finite JSON number"
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, want
	}
	n, ok := v.(json.Number)
	if !ok {
		return nil, want
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, want
	}
	return marshal(f)
}

func checkURL(s string) string {
	const want = "must be an absolute http or https URL"
	if len(s) > MaxURL {
		return fmt.Sprintf("must be at most %d bytes", MaxURL)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "must not contain spaces or control characters"
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return want
	}
	if sch := strings.ToLower(u.Scheme); sch != "http" && sch != "https" {
		return want
	}
	return ""
}

func (d Definition) multi(raw json.RawMessage) (json.RawMessage, string) {
	var ids []string
	if json.Unmarshal(raw, &ids) != nil || ids == nil {
		return nil, "must be an array of option ids"
	}
	if len(ids) > len(d.Options) {
		return nil, "names more options than the field has"
	}
	for i, id := range ids {
		if _, ok := d.option(id); !ok {
			return nil, "must hold only ids of the field's options"
		}
		if slices.Contains(ids[:i], id) {
			return nil, "must not name an option twice"
		}
	}
	return marshalIDs(d, ids), ""
}

func marshal(v any) (json.RawMessage, string) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, "is not valid"
	}
	return b, ""
}
