package field

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/mergepatch"
	"github.com/taskfn/taskfn/shared/textfield"
)

// Input is a definition as a client writes it: POST's whole body, PATCH's
// merge patch (RFC 7396; an absent member keeps what is there).
type Input struct {
	Name     mergepatch.Field[string]
	Type     mergepatch.Field[string]
	Options  mergepatch.Field[[]Option]
	Required mergepatch.Field[bool]
	Position mergepatch.Field[int]
}

var readOnly = []string{"id", "project", "version", "created_by", "created_at", "updated_at"}

// ParseInput decodes a JSON object into an Input; unknown members are a
// 400, wrong types and read-only members a validation error naming them.
func ParseInput(body []byte) (Input, error) {
	var in Input
	members, err := mergepatch.Object(body)
	if err != nil {
		return in, err
	}
	var bad errs.Fields
	for _, m := range members {
		var err error
		switch m.Name {
		case "name":
			err = mergepatch.Decode(m.Raw, &in.Name)
		case "type":
			err = mergepatch.Decode(m.Raw, &in.Type)
		case "options":
			if err = mergepatch.Decode(m.Raw, &in.Options); err != nil {
				err = fmt.Errorf(`must be an array of options, {"name": "…"} or, for one already there, {"id": "…", "name": "…"}`)
			}
		case "required":
			if err = mergepatch.Decode(m.Raw, &in.Required); err != nil {
				err = fmt.Errorf("must be true or false")
			}
		case "position":
			if err = mergepatch.Decode(m.Raw, &in.Position); err != nil || in.Position.Value < 0 {
				err = fmt.Errorf("must be a whole number, 0 or more")
			}
		default:
			if slices.Contains(readOnly, m.Name) {
				bad.Add(m.Name, "is read-only")
				continue
			}
			return in, errs.Syntax(fmt.Sprintf("unknown field %q", m.Name))
		}
		if err != nil {
			bad.Add(m.Name, err.Error())
		}
	}
	return in, bad.Err()
}

// Draft builds a new definition of project from a create request, made by
// creator. Its options have no ids yet: the store gives them.
func Draft(in Input, project, creator string) (Definition, error) {
	var f errs.Fields
	d := Definition{Project: project, CreatedBy: creator, Options: []Option{}}
	if !in.Name.Set || in.Name.Null {
		f.Add("name", "is required")
	} else if p := checkName(in.Name.Value, MaxName); p != "" {
		f.Add("name", p)
	}
	d.Name = in.Name.Value
	d.Type = Type(in.Type.Value)
	switch {
	case !in.Type.Set || in.Type.Null:
		f.Add("type", "is required")
	case !d.Type.Valid():
		f.Add("type", "must be one of "+typeList())
	}
	d.Required = in.Required.Value
	if in.Position.Set {
		f.Add("position", "is set by the server on create (last); PATCH moves a field")
	}
	if in.Options.Set && !in.Options.Null {
		for i, o := range in.Options.Value {
			if o.ID != "" {
				f.Add(fmt.Sprintf("options[%d].id", i), "is made by the server")
			}
		}
		d.Options = in.Options.Value
	}
	checkOptions(&f, d)
	return d, f.Err()
}

// Apply returns cur with the patch merged in, or why it may not be.
// Allowed: a new name, options added (anywhere) or renamed (by id),
// required from true to false, another position. Refused, because stored
// values would become invalid or incomplete without anyone seeing it: a
// new type, an option removed (or the options' order changed: a
// multi_select stores its ids in that order), required from false to
// true (tasks made before may lack a value).
func (in Input) Apply(cur Definition) (Definition, error) {
	var f errs.Fields
	next := cur
	next.Options = slices.Clone(cur.Options)
	if in.Name.Set {
		if in.Name.Null {
			f.Add("name", "must not be null")
		} else if p := checkName(in.Name.Value, MaxName); p != "" {
			f.Add("name", p)
		}
		next.Name = in.Name.Value
	}
	if in.Type.Set && (in.Type.Null || Type(in.Type.Value) != cur.Type) {
		f.Add("type", "cannot be changed: the values tasks hold would no longer be of the type; make a new field instead")
	}
	if in.Required.Set {
		switch {
		case in.Required.Null:
			f.Add("required", "must be true or false")
		case in.Required.Value && !cur.Required:
			f.Add("required", "cannot be turned on for a field that exists: tasks made before may lack a value; make a new required field instead")
		default:
			next.Required = in.Required.Value
		}
	}
	if in.Position.Set {
		if in.Position.Null {
			f.Add("position", "must not be null")
		}
		next.Position = in.Position.Value
	}
	if in.Options.Set {
		if in.Options.Null {
			in.Options.Value = nil
		}
		next.Options = in.Options.Value
		checkKept(&f, cur.Options, next.Options)
	}
	checkOptions(&f, next)
	return next, f.Err()
}

// checkKept: every option of was is still in now, by id and in the same
// order; ids not of was are refused (the server makes them).
func checkKept(f *errs.Fields, was, now []Option) {
	at := -1
	for i, o := range now {
		if o.ID == "" {
			continue
		}
		j := slices.IndexFunc(was, func(w Option) bool { return w.ID == o.ID })
		switch {
		case j < 0:
			f.Add(fmt.Sprintf("options[%d].id", i), "is not an option of this field (a new option has no id: the server makes it)")
		case j < at:
			f.Add(fmt.Sprintf("options[%d].id", i), "is out of order: existing options keep their order (new ones may go anywhere)")
		default:
			at = j
		}
	}
	for _, w := range was {
		if !slices.ContainsFunc(now, func(o Option) bool { return o.ID == w.ID }) {
			f.Add("options", fmt.Sprintf("cannot remove option %q (%s): tasks may hold it; rename it instead", w.Name, w.ID))
		}
	}
}

// checkOptions checks d's options against its type.
func checkOptions(f *errs.Fields, d Definition) {
	if !d.Type.HasOptions() {
		if len(d.Options) > 0 {
			f.Add("options", "only a select or multi_select field has options")
		}
		return
	}
	switch {
	case len(d.Options) == 0:
		f.Add("options", "a select or multi_select field needs at least one option")
	case len(d.Options) > MaxOptions:
		f.Add("options", fmt.Sprintf("must be at most %d", MaxOptions))
		return
	}
	for i, o := range d.Options {
		if p := checkName(o.Name, MaxOptionName); p != "" {
			f.Add(fmt.Sprintf("options[%d].name", i), p)
			continue
		}
		if slices.ContainsFunc(d.Options[:i], func(p Option) bool { return strings.EqualFold(p.Name, o.Name) }) {
			f.Add(fmt.Sprintf("options[%d].name", i), "is the name of another option (names are unique whatever the case)")
		}
	}
}

// checkName is what is wrong with s as a field's or an option's name.
func checkName(s string, max int) string {
	if p := textfield.Line(s, max); p != "" {
		return p
	}
	if strings.TrimSpace(s) != s {
		return "must not start or end with spaces"
	}
	return ""
}

func typeList() string {
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// MarshalJSON keeps Options an array, never null.
func (d Definition) MarshalJSON() ([]byte, error) {
	type plain Definition
	if d.Options == nil {
		d.Options = []Option{}
	}
	return json.Marshal(plain(d))
}
