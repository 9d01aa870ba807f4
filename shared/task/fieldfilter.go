package task

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/field"
)

// FieldOp is how a custom field filter compares: equality, or a bound of
// a range.
type FieldOp string

const (
	FieldEq  FieldOp = "eq"  // field.<name>=v
	FieldGte FieldOp = "gte" // field.<name>[gte]=v
	FieldLte FieldOp = "lte" // field.<name>[lte]=v
)

// FieldFilter keeps the tasks whose custom field (by definition id)
// compares to Value, a JSON value in the stored form; Not inverts an
// equality (a checkbox filtered false keeps the tasks it is not true on,
// set false or never set).
type FieldFilter struct {
	ID    int64
	Op    FieldOp
	Value json.RawMessage
	Not   bool
}

// FieldQuery is a custom field filter as a query string names it, before
// its project's definitions resolve it.
type FieldQuery struct {
	Name  string
	Op    FieldOp
	Value string
}

// ResolveFieldFilters turns the query's filters into FieldFilters against
// the project's live definitions: an unknown name, an operator the type
// does not allow, or a value that is not of the type is a 422 naming
// field.<name>. Values are parsed by type: text, url and user match
// exactly; select and multi_select take an option by name (as the UI
// shows it, case-insensitive) or by id, multi_select matching tasks that
// have the option; checkbox true or false; number a decimal; date
// YYYY-MM-DD; datetime RFC 3339 (compared in UTC).
func ResolveFieldFilters(set field.Set, qs []FieldQuery) ([]FieldFilter, error) {
	var bad errs.Fields
	out := make([]FieldFilter, 0, len(qs))
	for _, q := range qs {
		name := "field." + q.Name
		d, ok := set.ByName(q.Name)
		if !ok {
			bad.Add(name, "names no custom field of the project")
			continue
		}
		if q.Op != FieldEq && !ordered(d.Type) {
			bad.Add(name, "takes [gte] and [lte] only for number, date and datetime fields; a "+string(d.Type)+" field is filtered by equality")
			continue
		}
		f, problem := fieldValue(d, q.Value)
		if problem != "" {
			bad.Add(name, problem)
			continue
		}
		f.ID, f.Op = d.ID, q.Op
		out = append(out, f)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ordered reports whether t's values have an order ranges compare in.
func ordered(t field.Type) bool { return t == field.Number || t == field.Date || t == field.DateTime }

// fieldValue parses v as a value of d's type, in the stored form.
func fieldValue(d field.Definition, v string) (FieldFilter, string) {
	var f FieldFilter
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	switch d.Type {
	case field.Number:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || strings.ContainsAny(v, "xXpP_") || n != n {
			return f, "must be a decimal number"
		}
		f.Value = json.RawMessage(strconv.FormatFloat(n, 'f', -1, 64))
	case field.Date:
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return f, "must be a date, YYYY-MM-DD"
		}
		f.Value = str(v)
	case field.DateTime:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return f, "must be an RFC 3339 date-time, e.g. 2026-12-01T09:00:00Z"
		}
		f.Value = str(t.UTC().Format(field.DateTimeLayout))
	case field.Checkbox:
		switch v {
		case "true":
			f.Value = json.RawMessage("true")
		case "false":
			// Unchecked is false or never set: not true.
			f.Value, f.Not = json.RawMessage("true"), true
		default:
			return f, "must be true or false"
		}
	case field.Select, field.MultiSelect:
		o, ok := optionOf(d, v)
		if !ok {
			return f, "names no option of the field"
		}
		id, _ := json.Marshal(o.ID)
		f.Value = id
		if d.Type == field.MultiSelect {
			f.Value = json.RawMessage("[" + string(id) + "]") // has the option
		}
	default: // text, url, user: exact
		if v == "" {
			return f, "must not be empty"
		}
		f.Value = str(v)
	}
	return f, ""
}

// optionOf finds d's option named v (case-insensitive), or whose id is v.
func optionOf(d field.Definition, v string) (field.Option, bool) {
	for _, o := range d.Options {
		if strings.EqualFold(o.Name, v) {
			return o, true
		}
	}
	for _, o := range d.Options {
		if id, _ := json.Marshal(o.ID); string(id) == v || string(id) == strconv.Quote(v) {
			return o, true
		}
	}
	return field.Option{}, false
}

// fieldConds renders custom field filters. Equality is containment,
// fields @> {"<id>": v}, which tasks_live_fields_idx (GIN, jsonb_path_ops)
// serves; a range compares the jsonb value (numbers numerically, the
// fixed-width date and datetime strings in time order), served by the
// project's ordered index walk (docs/custom-fields.md, Indexes and plans).
// Ids are integers, written as literals.
func fieldConds(fs []FieldFilter, arg func(any) string) []string {
	var c []string
	for _, f := range fs {
		id := strconv.FormatInt(f.ID, 10)
		switch f.Op {
		case FieldGte:
			c = append(c, "fields->'"+id+"' >= "+arg(string(f.Value))+"::jsonb")
		case FieldLte:
			c = append(c, "fields->'"+id+"' <= "+arg(string(f.Value))+"::jsonb")
		default:
			cond := "fields @> " + arg(`{"`+id+`":`+string(f.Value)+`}`) + "::jsonb"
			if f.Not {
				cond = "NOT " + cond
			}
			c = append(c, cond)
		}
	}
	return c
}
