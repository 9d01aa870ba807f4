package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
)

// MaxBulk is the most tasks one UpdateMany changes.
const MaxBulk = 100

// Failure is why one task of a bulk change was refused.
type Failure struct {
	Index int // in the ids given
	ID    uuid.UUID
	Err   error
}

// BulkError refuses a bulk change: it lists every task that could not be
// changed, and nothing was.
type BulkError struct{ Failures []Failure }

func (e *BulkError) Error() string {
	return fmt.Sprintf("task: bulk change refused for %d of its tasks, first %s: %v", len(e.Failures), e.Failures[0].ID, e.Failures[0].Err)
}

// UpdateMany changes the tasks ids (distinct, at most MaxBulk) all or
// nothing, in one transaction: every row is locked (in id order, so two
// bulk changes cannot deadlock), change is asked for each in the order
// given, and if it refuses any (or one is missing: ErrNotFound) the
// answer is a *BulkError listing each refusal and nothing is written.
// Otherwise each task is written as Update writes one: its history line,
// its events, its version bumped only if it changed. The tasks are
// returned in the order given.
//
// Subtasks closed or reopened move their parents' counts in the same
// transaction; a parent among ids is returned at its final version, the
// others are appended to touched.
func (s *Store) UpdateMany(ctx context.Context, actor string, ids []uuid.UUID, change func(cur Task) (Task, error), touched ...Touched) ([]Task, error) {
	if len(ids) == 0 || len(ids) > MaxBulk {
		return nil, fmt.Errorf("task: bulk: %d tasks, want 1 to %d", len(ids), MaxBulk)
	}
	out := make([]Task, len(ids))
	var (
		wrote   []uuid.UUID
		parents []Task // outside ids
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		wrote, parents = wrote[:0], nil
		const lock = `
SELECT ` + Columns + `
FROM tasks
WHERE id = ANY($1::uuid[])
  AND deleted_at IS NULL
ORDER BY id
FOR UPDATE`
		rows, _ := tx.Query(ctx, lock, uuidStrings(ids))
		found, err := pgx.CollectRows(rows, ScanRows())
		if err != nil {
			return fmt.Errorf("task: bulk: %w", err)
		}
		if err := s.present(ctx, tx, found); err != nil {
			return err
		}
		byID := make(map[uuid.UUID]Task, len(found))
		for _, t := range found {
			byID[t.ID] = t
		}
		var refused []Failure
		next := make([]Task, len(ids))
		for i, id := range ids {
			cur, ok := byID[id]
			if !ok {
				refused = append(refused, Failure{i, id, ErrNotFound})
				continue
			}
			n, err := change(cur)
			if err == nil {
				// Custom field values, validated as a single task's.
				err = s.applyFields(ctx, tx, &cur, &n)
			}
			if err != nil {
				refused = append(refused, Failure{i, id, err})
				continue
			}
			byID[id] = cur // with its values rendered, for the history
			next[i] = n
		}
		if len(refused) > 0 {
			return &BulkError{Failures: refused}
		}
		var changed []int // indexes into ids of the tasks that change
		for i, id := range ids {
			cur := byID[id]
			if SameContent(cur, next[i]) {
				out[i] = cur
				continue
			}
			if next[i].Project != cur.Project {
				if err := ensurePersonal(ctx, tx, next[i].Project); err != nil {
					return err
				}
			}
			changed = append(changed, i)
		}
		if len(changed) == 0 {
			return nil
		}
		updated, err := writeTasks(ctx, tx, changed, ids, next)
		if err != nil {
			return err
		}
		lines := make([]activity.Line, 0, len(changed))
		var evs []events.Event
		for _, i := range changed {
			id := ids[i]
			cur, up := byID[id], updated[id]
			up.Fields, up.DroppedFields = next[i].Fields, next[i].DroppedFields
			out[i] = up
			lines = append(lines, activity.Line{TaskID: id, Actor: actor, Kind: activity.Updated, Changes: activityChanges(&cur, up)})
			for _, d := range changeData(actor, cur, up) {
				ev, err := events.NewTaskEvent(s.topic, id, d)
				if err != nil {
					return err
				}
				evs = append(evs, ev)
			}
			wrote = append(wrote, id)
		}
		// One statement each for every task's row, history line and
		// events: a statement a task was most of a bulk change's time.
		if err := activity.AddMany(ctx, tx, lines); err != nil {
			return err
		}
		if err := outbox.AddMany(ctx, tx, evs); err != nil {
			return err
		}
		var closed []uuid.UUID
		for _, i := range changed {
			if closing(byID[ids[i]].Status, out[i].Status) != 0 {
				closed = append(closed, ids[i])
			}
		}
		if len(closed) == 0 {
			return nil
		}
		moved, err := s.moveParents(ctx, tx, actor, closed, func(child uuid.UUID) (int32, int32) {
			i := slices.Index(ids, child)
			return 0, closing(byID[child].Status, out[i].Status)
		})
		if err != nil {
			return err
		}
		for _, p := range moved {
			if i := slices.Index(ids, p.ID); i >= 0 {
				out[i] = p
			} else {
				parents = append(parents, p)
			}
		}
		return nil
	})
	var be *BulkError
	if errors.As(err, &be) {
		return nil, be
	}
	if err != nil {
		return nil, err
	}
	for _, id := range wrote {
		s.publish(ctx, id)
	}
	s.report(ctx, parents, touched)
	return out, nil
}

// writeTasks writes the tasks ids[i], i in changed, to next[i] in one
// statement, bumping each version, and returns them as stored, by id.
func writeTasks(ctx context.Context, tx pgx.Tx, changed []int, ids []uuid.UUID, next []Task) (map[uuid.UUID]Task, error) {
	n := len(changed)
	tid := make([]string, n)
	title, desc, status, prio, labels, proj := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	due := make([]*time.Time, n)
	assignee := make([]*string, n)
	archived := make([]bool, n)
	rule, zone, reminders := make([]*string, n), make([]string, n), make([]string, n)
	fields := make([]string, n)
	for j, i := range changed {
		t := next[i]
		fields[j] = storedArg(t.StoredFields)
		tid[j], title[j], desc[j], status[j], prio[j], proj[j] = ids[i].String(), t.Title, t.Description, string(t.Status), string(t.Priority), t.Project
		due[j], assignee[j], archived[j] = t.DueAt, t.AssigneeID, t.Archived
		rule[j], zone[j] = t.Recurrence, zoneArg(t.RecurrenceTZ)
		b, err := json.Marshal(nonNil(t.Labels))
		if err != nil {
			return nil, fmt.Errorf("task: bulk: %w", err)
		}
		labels[j] = string(b)
		if b, err = json.Marshal(nonNil(t.Reminders)); err != nil {
			return nil, fmt.Errorf("task: bulk: %w", err)
		}
		reminders[j] = string(b)
	}
	// labels and reminders travel as JSON: text[][] cannot hold arrays of
	// different lengths.
	q := `
UPDATE tasks AS t
SET title = n.title,
    description = n.description,
    status = n.status,
    priority = n.priority,
    due_at = n.due_at,
    assignee_id = n.assignee_id,
    labels = ARRAY(SELECT jsonb_array_elements_text(n.labels::jsonb)),
    project = n.project,
    archived_at = CASE WHEN n.archived THEN coalesce(t.archived_at, now()) END,
    recurrence = n.recurrence,
    recurrence_tz = n.recurrence_tz,
    reminders = ARRAY(SELECT jsonb_array_elements_text(n.reminders::jsonb)),
    fields = n.fields::jsonb,
    version = t.version + 1,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::text[], $12::text[], $13::text[], $14::text[])
    AS n(id, title, description, status, priority, due_at, assignee_id, labels, project, archived, recurrence, recurrence_tz, reminders, fields)
WHERE t.id = n.id
RETURNING ` + qualifiedColumns
	rows, _ := tx.Query(ctx, q, tid, title, desc, status, prio, due, assignee, labels, proj, archived, rule, zone, reminders, fields)
	written, err := pgx.CollectRows(rows, ScanRows())
	if err != nil {
		return nil, noProject(fmt.Errorf("task: bulk: %w", err))
	}
	if len(written) != n {
		return nil, fmt.Errorf("task: bulk: %d of %d rows written", len(written), n)
	}
	out := make(map[uuid.UUID]Task, n)
	for _, t := range written {
		out[t.ID] = t
	}
	return out, nil
}

// uuidStrings is ids as text, which every query mode encodes: a
// []uuid.UUID has no text form pgx knows, and the exec mode behind
// PgBouncer sends parameters as text.
func uuidStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

// qualifiedColumns is Columns of the table aliased t, for statements whose
// other relations have columns of the same names.
var qualifiedColumns = "t." + strings.ReplaceAll(Columns, ", ", ", t.")
