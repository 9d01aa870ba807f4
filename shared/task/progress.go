package task

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
)

// Touched is where a write reports the other tasks it changed: parents
// whose subtask counts moved, each at a new version, whose cache entries
// the caller refreshes as it does the task's own. A nil Touched drops
// them (their entries then serve the previous version until they expire
// or the next write refreshes them), so every API route passes one.
type Touched = *[]Task

// progress is how a change moves parents' subtask counts.
type progress map[uuid.UUID]Subtasks

func (p progress) add(parent uuid.UUID, total, done int32) {
	d := p[parent]
	d.Total += total
	d.Done += done
	p[parent] = d
}

// closing is the change in a parent's closed count when its subtask goes
// from status before to after.
func closing(before, after Status) int32 {
	switch {
	case !before.Closed() && after.Closed():
		return 1
	case before.Closed() && !after.Closed():
		return -1
	}
	return 0
}

// parentsOf returns the parent of each of ids that has one, by child.
// Call it with the children's rows locked: a relation added or removed
// meanwhile locks the child too (see SubtaskLinked), so what this reads
// stays true until commit. It reads task_relations, whose writes live in
// shared/relation: the counts are the task's, the relations are not.
func parentsOf(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) (map[uuid.UUID]uuid.UUID, error) {
	const q = `
SELECT task_id, other_id
FROM task_relations
WHERE task_id = ANY($1::uuid[])
  AND kind = 'subtask_of'`
	rows, _ := tx.Query(ctx, q, uuidStrings(ids))
	out := make(map[uuid.UUID]uuid.UUID)
	var child, parent uuid.UUID
	_, err := pgx.ForEachRow(rows, []any{&child, &parent}, func() error {
		out[child] = parent
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("task: parents: %w", err)
	}
	return out, nil
}

// apply writes p's deltas to the parents' counts, in id order (two
// changes touching the same parents lock them alike), bumping each
// version, with a task.updated event naming "subtasks" made by actor; a
// zero delta writes nothing. The increments are applied to the row as
// it stands when its lock is granted, so concurrent changes add up.
// It returns the parents as written. A parent purged meanwhile is left
// out (its subtasks lost it with it); one in the trash keeps counting, so
// it is right when restored, but has no event and is not returned: it
// reads as gone, and its cache entry must stay so.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, actor string, p progress) ([]Task, error) {
	ids := make([]uuid.UUID, 0, len(p))
	for id, d := range p {
		if d != (Subtasks{}) {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	const q = `
UPDATE tasks
SET subtasks_total = subtasks_total + $2,
    subtasks_done = subtasks_done + $3,
    version = version + 1
WHERE id = $1
  AND deleted_at IS NULL
RETURNING ` + Columns
	const trashed = `
UPDATE tasks
SET subtasks_total = subtasks_total + $2,
    subtasks_done = subtasks_done + $3
WHERE id = $1`
	out := make([]Task, 0, len(ids))
	for _, id := range ids {
		d := p[id]
		rows, _ := tx.Query(ctx, q, id, d.Total, d.Done)
		t, err := collectOne(rows, "subtask counts")
		if errors.Is(err, ErrNotFound) {
			if _, err := tx.Exec(ctx, trashed, id, d.Total, d.Done); err != nil {
				return nil, fmt.Errorf("task: subtask counts: %w", err)
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if t, err = s.presentOne(ctx, tx, t); err != nil {
			return nil, err
		}
		if err := s.addEvents(ctx, tx, id, events.TaskUpdatedData{Actor: actor, Changed: []string{"subtasks"}, Task: t.Snapshot()}); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// report hands the parents a committed write changed to touched, if any,
// and publishes their events.
func (s *Store) report(ctx context.Context, parents []Task, touched []Touched) {
	for _, t := range parents {
		s.publish(ctx, t.ID)
	}
	for _, to := range touched {
		if to != nil {
			*to = append(*to, parents...)
		}
	}
}

// SubtaskLinked counts child in parent's subtasks, inside the transaction
// that adds the relation child subtask_of parent (shared/relation), and
// returns the parent as written. The child's row is locked (shared) first,
// so its status cannot change unseen between this count and commit, and
// an update of the child that runs after finds the relation.
func (s *Store) SubtaskLinked(ctx context.Context, tx pgx.Tx, actor string, child, parent uuid.UUID) ([]Task, error) {
	return s.subtaskMoved(ctx, tx, actor, child, parent, 1)
}

// SubtaskUnlinked is SubtaskLinked for the relation's removal.
func (s *Store) SubtaskUnlinked(ctx context.Context, tx pgx.Tx, actor string, child, parent uuid.UUID) ([]Task, error) {
	return s.subtaskMoved(ctx, tx, actor, child, parent, -1)
}

func (s *Store) subtaskMoved(ctx context.Context, tx pgx.Tx, actor string, child, parent uuid.UUID, sign int32) ([]Task, error) {
	const q = `
SELECT status
FROM tasks
WHERE id = $1
  AND deleted_at IS NULL
FOR SHARE`
	var st string
	if err := tx.QueryRow(ctx, q, child).Scan(&st); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("task: subtask: %w", err)
	}
	var done int32
	if Status(st).Closed() {
		done = sign
	}
	return s.apply(ctx, tx, actor, progress{parent: {Total: sign, Done: done}})
}

// Published publishes the events of parents a relation change wrote, after
// its commit, and hands the parents to touched.
func (s *Store) Published(ctx context.Context, parents []Task, touched Touched) {
	s.report(ctx, parents, []Touched{touched})
}

// PublishKey publishes, after its commit, the events another package's
// write added under task id's key (best effort, as for the store's own).
func (s *Store) PublishKey(ctx context.Context, id uuid.UUID) { s.publish(ctx, id) }

// Topic is where the store's task events go; events keyed by a task
// belong there too, in order with its own.
func (s *Store) Topic() string { return s.topic }
