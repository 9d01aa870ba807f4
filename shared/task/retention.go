package task

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskfn/taskfn/shared/pg"
)

// DeleteFinishedBefore deletes up to batch tasks that are done or cancelled
// and were last changed before cutoff, and returns the ids it deleted, for
// the caller to drop from the task cache, and the parents that counted
// them among their subtasks, at their new versions, to refresh there.
// Rows another transaction holds (an update in flight, a concurrent
// cleanup's batch) are skipped rather than waited for, so two cleanups
// running at once share the work and neither blocks the API; a task
// reopened meanwhile no longer matches once its lock is taken, and stays.
//
// It writes no task.deleted events: retention is not a change anyone made,
// and consumers keep nothing about tasks this old. A parent's new counts
// are a change of the parent, with its task.updated event.
func (s *Store) DeleteFinishedBefore(ctx context.Context, cutoff time.Time, batch int) ([]uuid.UUID, []Task, error) {
	if batch < 1 {
		return nil, nil, fmt.Errorf("task: retention: batch %d must be positive", batch)
	}
	var (
		ids     []uuid.UUID
		parents []Task
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		ids, parents = nil, nil
		// Each task's parent is read with the task's lock, before the
		// delete takes the relation with it.
		const pick = `
SELECT t.id, r.other_id
FROM tasks t
LEFT JOIN task_relations r ON r.task_id = t.id AND r.kind = 'subtask_of'
WHERE t.status IN ('done', 'cancelled')
  AND t.updated_at < $1
LIMIT $2
FOR UPDATE OF t SKIP LOCKED`
		rows, _ := tx.Query(ctx, pick, cutoff, batch)
		p := progress{}
		var (
			id     uuid.UUID
			parent pgtype.UUID
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &parent}, func() error {
			ids = append(ids, id)
			if parent.Valid {
				p.add(parent.Bytes, -1, -1) // every task deleted here is closed
			}
			return nil
		})
		if err != nil || len(ids) == 0 {
			return wrapRetention(err)
		}
		const q = `
DELETE FROM tasks
WHERE id = ANY($1::uuid[])`
		if _, err := tx.Exec(ctx, q, uuidStrings(ids)); err != nil {
			return wrapRetention(err)
		}
		parents, err = s.apply(ctx, tx, "", p)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	s.report(ctx, parents, nil)
	return ids, parents, nil
}

func wrapRetention(err error) error {
	if err != nil {
		return fmt.Errorf("task: retention: %w", err)
	}
	return nil
}
