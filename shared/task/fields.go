package task

import (
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/project"
)

// Custom field values (docs/custom-fields.md). The tasks.fields column
// keys values by definition id; the API, events, activity and exports
// name them. Every write loads the project's live definitions (no
// process cache: a definition added, renamed or deleted is in force for
// the very next write), validates the patch against them and stores the
// id-keyed result; every read renders the stored values through the live
// definitions, so a deleted field's values vanish at once, before cleanup
// purges its keys.

// sets loads the live definitions of each project of tasks through q: the
// transaction of the write or read that holds tasks, or a pool outside
// one (never a pool inside one: that waits for a second connection).
func (s *Store) sets(ctx context.Context, q field.Querier, tasks []Task) (map[string]field.Set, error) {
	var keys []string
	for i := range tasks {
		if len(tasks[i].StoredFields) > 0 && !slices.Contains(keys, tasks[i].Project) {
			keys = append(keys, tasks[i].Project)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return field.LoadMany(ctx, q, keys)
}

// present renders tasks' stored values by name (Fields) through their
// projects' live definitions; a task without values costs nothing, a
// page of them one query.
func (s *Store) present(ctx context.Context, q field.Querier, tasks []Task) error {
	sets, err := s.sets(ctx, q, tasks)
	if err != nil || sets == nil {
		return err
	}
	for i := range tasks {
		tasks[i].Fields = presentIn(sets[tasks[i].Project], tasks[i].StoredFields)
	}
	return nil
}

// presentOne is present for one task.
func (s *Store) presentOne(ctx context.Context, q field.Querier, t Task) (Task, error) {
	one := []Task{t}
	if err := s.present(ctx, q, one); err != nil {
		return Task{}, err
	}
	return one[0], nil
}

// presentIn is set.Present, nil for no values (the JSON shows {}).
func presentIn(set field.Set, stored map[string]json.RawMessage) map[string]json.RawMessage {
	if len(stored) == 0 {
		return nil
	}
	out := set.Present(stored)
	if len(out) == 0 {
		return nil
	}
	return out
}

// fieldsKey is the project a task's definitions are read from: a task
// filed without one goes to its owner's personal project.
func fieldsKey(t Task) string {
	if t.Project == "" {
		return project.PersonalPrefix + t.OwnerID
	}
	return t.Project
}

// createFields sets t's stored and rendered values for its create, from
// target, its project's definitions: t.FieldsPatch checked against them,
// and every required field given.
func createFields(target field.Set, t *Task) error {
	return setFields(target, nil, t, true)
}

// setFields sets t's stored and rendered values: base, with t.FieldsPatch
// applied, checked against target; entering (made or moved into target's
// project) also requires every required field.
func setFields(target field.Set, base map[string]json.RawMessage, t *Task, entering bool) error {
	stored, err := target.Apply(base, t.FieldsPatch, entering)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		stored = nil
	}
	t.StoredFields = stored
	t.Fields = presentIn(target, stored)
	return nil
}

// applyFields sets next's stored and rendered values for an update: cur is
// the task as it stands (nil for a create). A move to another project
// keeps the values both projects define (field.Set.Keep) and names the
// others in next.DroppedFields, or, when the store refuses drops, fails
// with a 422 naming them. next.FieldsPatch is then merged in, validated
// against the target's definitions (a *errs.ValidationError naming
// fields.<name>); a task made or moved into the project must then have
// every required field. cur.Fields is rendered too, for the history and
// events.
func (s *Store) applyFields(ctx context.Context, tx field.Querier, cur *Task, next *Task) error {
	moved := cur != nil && fieldsKey(*cur) != fieldsKey(*next)
	if cur != nil && !moved && next.FieldsPatch == nil {
		next.StoredFields, next.Fields = cur.StoredFields, cur.Fields
		return nil
	}
	target, err := field.Load(ctx, tx, fieldsKey(*next))
	if err != nil {
		return err
	}
	var base map[string]json.RawMessage
	if cur != nil {
		base = cur.StoredFields
		if moved && len(cur.StoredFields) > 0 {
			from, err := field.Load(ctx, tx, fieldsKey(*cur))
			if err != nil {
				return err
			}
			cur.Fields = presentIn(from, cur.StoredFields)
			var dropped []string
			base, dropped = from.Keep(cur.StoredFields, target)
			// A value the patch sets again is not lost.
			dropped = slices.DeleteFunc(dropped, func(n string) bool {
				v, ok := next.FieldsPatch[n]
				return ok && string(v) != "null"
			})
			if len(dropped) > 0 && s.refuseDrops {
				return fieldsDropped(fieldsKey(*next), dropped)
			}
			next.DroppedFields = dropped
		}
	}
	// A task entering a project, made or moved there, must have its
	// required fields; one already there keeps what it has.
	return setFields(target, base, next, cur == nil || moved)
}

// storedArg is the value written to tasks.fields: never NULL, and text,
// so it travels as jsonb whatever the connection's exec mode.
func storedArg(stored map[string]json.RawMessage) string {
	if len(stored) == 0 {
		return "{}"
	}
	b, err := json.Marshal(stored)
	if err != nil {
		return "{}" // raw values from field.Set.Apply are valid JSON
	}
	return string(b)
}

// sameFields reports whether a and b hold the same values by name.
func sameFields(a, b map[string]json.RawMessage) bool {
	return maps.EqualFunc(a, b, func(x, y json.RawMessage) bool { return jsonEqual(x, y) })
}

// jsonEqual compares two JSON values by meaning, not spelling (the
// database normalizes what it stores).
func jsonEqual(x, y json.RawMessage) bool {
	if string(x) == string(y) {
		return true
	}
	var a, b any
	if json.Unmarshal(x, &a) != nil || json.Unmarshal(y, &b) != nil {
		return false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// changedFieldNames are the names of the values that differ between a
// and b, sorted, as "fields.<name>".
func changedFieldNames(a, b map[string]json.RawMessage) []string {
	var out []string
	for n, v := range a {
		if w, ok := b[n]; !ok || !jsonEqual(v, w) {
			out = append(out, "fields."+n)
		}
	}
	for n := range b {
		if _, ok := a[n]; !ok {
			out = append(out, "fields."+n)
		}
	}
	slices.Sort(out)
	return out
}

// FieldSet returns the live custom field definitions of project key.
func (s *Store) FieldSet(ctx context.Context, key string) (field.Set, error) {
	return s.fields.Load(ctx, key)
}
