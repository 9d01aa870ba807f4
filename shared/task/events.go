package task

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
)

// Snapshot returns t as task events carry it. Labels are never null in an
// event, as in the table.
func (t Task) Snapshot() events.TaskSnapshot {
	return events.TaskSnapshot{
		ID:           t.ID,
		Project:      t.Project,
		Title:        t.Title,
		Description:  t.Description,
		Status:       string(t.Status),
		Priority:     string(t.Priority),
		DueAt:        t.DueAt,
		OwnerID:      t.OwnerID,
		AssigneeID:   t.AssigneeID,
		Labels:       nonNil(t.Labels),
		Subtasks:     &events.Subtasks{Total: t.Subtasks.Total, Done: t.Subtasks.Done},
		Archived:     t.Archived,
		ArchivedAt:   t.ArchivedAt,
		Recurrence:   t.Recurrence,
		RecurrenceTZ: zoneArg(t.RecurrenceTZ),
		Reminders:    nonNil(t.Reminders),
		SeriesID:     t.SeriesID,
		Fields:       nonNilFields(t.Fields),
		CreatedAt:    t.CreatedAt,
		UpdatedAt:    t.UpdatedAt,
		Version:      t.Version,
	}
}

// changedFields names, as in the JSON and in the order of
// events.TaskFields, the fields an update changed; then each custom field
// whose value changed (by name, rendered), as "fields.<name>", sorted.
func changedFields(before, after Task) []string {
	differs := map[string]bool{
		"project":       before.Project != after.Project,
		"title":         before.Title != after.Title,
		"description":   before.Description != after.Description,
		"status":        before.Status != after.Status,
		"priority":      before.Priority != after.Priority,
		"due_at":        !sameTime(before.DueAt, after.DueAt),
		"assignee_id":   !sameString(before.AssigneeID, after.AssigneeID),
		"labels":        !slices.Equal(before.Labels, after.Labels), // nil and empty are equal, as in the table
		"archived":      before.Archived != after.Archived,
		"recurrence":    !sameString(before.Recurrence, after.Recurrence),
		"recurrence_tz": zoneArg(before.RecurrenceTZ) != zoneArg(after.RecurrenceTZ),
		"reminders":     !slices.Equal(before.Reminders, after.Reminders),
	}
	var out []string
	for _, f := range events.TaskFields {
		if differs[f] {
			out = append(out, f)
		}
	}
	if !sameFields(before.Fields, after.Fields) || !sameFields(before.StoredFields, after.StoredFields) {
		named := changedFieldNames(before.Fields, after.Fields)
		if len(named) == 0 {
			// Values of fields the project no longer defines: invisible,
			// but a write all the same (cleanup's purge aside).
			named = []string{"fields"}
		}
		out = append(out, named...)
	}
	return out
}

// nonNilFields is fields, {} for none: events and exports always carry
// the object.
func nonNilFields(fields map[string]json.RawMessage) map[string]json.RawMessage {
	if fields == nil {
		return map[string]json.RawMessage{}
	}
	return fields
}

// changeData is the events of turning before into after: updated, then
// status_changed and assigned when those changed. None when nothing did.
func changeData(actor string, before, after Task) []events.Data {
	changed := changedFields(before, after)
	if len(changed) == 0 {
		return nil
	}
	snap := after.Snapshot()
	out := []events.Data{events.TaskUpdatedData{Actor: actor, Changed: changed, Task: snap}}
	if before.Status != after.Status {
		out = append(out, events.TaskStatusChangedData{
			Actor: actor, OldStatus: string(before.Status), NewStatus: string(after.Status), Task: snap,
		})
	}
	if !sameString(before.AssigneeID, after.AssigneeID) {
		out = append(out, events.TaskAssignedData{
			Actor: actor, OldAssigneeID: before.AssigneeID, NewAssigneeID: after.AssigneeID, Task: snap,
		})
	}
	return out
}

// addEvents adds the events of a change of task id to the outbox, in tx.
func (s *Store) addEvents(ctx context.Context, tx pgx.Tx, id uuid.UUID, data ...events.Data) error {
	for _, d := range data {
		ev, err := events.NewTaskEvent(s.topic, id, d)
		if err != nil {
			return err
		}
		if err := outbox.Add(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// queueEvents is addEvents queued on tail, the last round trip of the
// write's transaction (pg.InTxBatched); it returns the events, for a
// publish after commit that need not read them back.
func (s *Store) queueEvents(tail *pgx.Batch, id uuid.UUID, data ...events.Data) ([]events.Event, error) {
	out := make([]events.Event, 0, len(data))
	for _, d := range data {
		ev, err := events.NewTaskEvent(s.topic, id, d)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, outbox.Queue(tail, out...)
}

// publish publishes id's events after its write committed (best effort).
func (s *Store) publish(ctx context.Context, id uuid.UUID) {
	outbox.PublishCommitted(ctx, s.db.Primary, s.pub, id.String())
}

// fieldJSON is the value of field in t's JSON.
func fieldJSON(t Task, field string) json.RawMessage {
	if name, ok := strings.CutPrefix(field, "fields."); ok {
		if v, ok := t.Fields[name]; ok {
			return v
		}
		return json.RawMessage("null")
	}
	var v any
	switch field {
	case "fields":
		v = nonNilFields(t.Fields)
	case "project":
		v = t.Project
	case "title":
		v = t.Title
	case "description":
		v = t.Description
	case "status":
		v = t.Status
	case "priority":
		v = t.Priority
	case "due_at":
		v = t.DueAt
	case "assignee_id":
		v = t.AssigneeID
	case "labels":
		v = nonNil(t.Labels)
	case "archived":
		v = t.Archived
	case "recurrence":
		v = t.Recurrence
	case "recurrence_tz":
		v = zoneArg(t.RecurrenceTZ)
	case "reminders":
		v = nonNil(t.Reminders)
	}
	b, _ := json.Marshal(v) // strings, times and string slices always marshal
	return b
}

// activityChanges is the history line of turning before into after: each
// changed field, old and new value. For a created task (before is nil),
// every field it was given, from null.
func activityChanges(before *Task, after Task) []activity.Change {
	null := json.RawMessage("null")
	if before == nil {
		var out []activity.Change
		for _, f := range events.TaskFields {
			v := fieldJSON(after, f)
			switch string(v) {
			case "null", `""`, "[]", "false", `"` + DefaultRecurrenceTZ + `"`:
				continue // the defaults say nothing; a zone alone is UTC's
			}
			out = append(out, activity.Change{Field: f, Old: null, New: v})
		}
		for _, f := range changedFieldNames(nil, after.Fields) {
			out = append(out, activity.Change{Field: f, Old: null, New: fieldJSON(after, f)})
		}
		return out
	}
	var out []activity.Change
	for _, f := range changedFields(*before, after) {
		out = append(out, activity.Change{Field: f, Old: fieldJSON(*before, f), New: fieldJSON(after, f)})
	}
	return out
}
