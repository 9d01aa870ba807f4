package task

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// DeleteFinishedBefore deletes up to batch tasks that are done or cancelled
// and were last changed before cutoff, and returns the ids it deleted, for
// the caller to drop from the task cache.
// Rows another transaction holds (an update in flight, a concurrent
// cleanup's batch) are skipped rather than waited for, so two cleanups
// running at once share the work and neither blocks the API; a task
// reopened meanwhile no longer matches once its lock is taken, and stays.
//
// It writes no task.deleted events: retention is not a change anyone made,
// and consumers keep nothing about tasks this old.
func (s *Store) DeleteFinishedBefore(ctx context.Context, cutoff time.Time, batch int) ([]uuid.UUID, error) {
	if batch < 1 {
		return nil, fmt.Errorf("task: retention: batch %d must be positive", batch)
	}
	const q = `
DELETE FROM tasks
WHERE id IN (
  SELECT id
  FROM tasks
  WHERE status IN ('done', 'cancelled')
    AND updated_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
RETURNING id`
	rows, _ := s.db.Primary.Query(ctx, q, cutoff, batch)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("task: retention: %w", err)
	}
	return ids, nil
}
