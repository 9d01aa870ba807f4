package task

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
)

// ArchiveFinishedBefore archives up to batch live tasks that are done or
// cancelled and were last changed before cutoff, and returns them as
// written, for the caller to refresh in the task cache. Each is a change
// like a PATCH of archived: true by the system (actor ""): a new version,
// its history line and its task.updated event naming "archived". Nothing
// is deleted: an archived task leaves the default lists and comes back
// with archived: false. Its parent still counts it, closed.
//
// Rows another transaction holds (an update in flight, a concurrent
// cleanup's batch) are skipped rather than waited for, so two cleanups
// running at once share the work and neither blocks the API; a task
// reopened meanwhile no longer matches once its lock is taken, and stays.
func (s *Store) ArchiveFinishedBefore(ctx context.Context, cutoff time.Time, batch int) ([]Task, error) {
	if batch < 1 {
		return nil, fmt.Errorf("task: archive: batch %d must be positive", batch)
	}
	var out []Task
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		q := pickFinished(batch) + `UPDATE tasks AS t
SET archived_at = now(),
    version = t.version + 1,
    updated_at = now()
FROM picked
WHERE t.id = picked.id
RETURNING ` + qualifiedColumns
		rows, _ := tx.Query(ctx, q, cutoff)
		var err error
		if out, err = pgx.CollectRows(rows, ScanRows()); err != nil {
			return fmt.Errorf("task: archive: %w", err)
		}
		lines := make([]activity.Line, len(out))
		for i, t := range out {
			before := t
			before.Archived, before.ArchivedAt = false, nil
			lines[i] = activity.Line{TaskID: t.ID, Kind: activity.Updated, Changes: activityChanges(&before, t)}
			d := events.TaskUpdatedData{Changed: []string{"archived"}, Task: t.Snapshot()}
			if err := s.addEvents(ctx, tx, t.ID, d); err != nil {
				return err
			}
		}
		return activity.AddMany(ctx, tx, lines)
	})
	if err != nil {
		return nil, err
	}
	for _, t := range out {
		s.publish(ctx, t.ID)
	}
	return out, nil
}

// TrashFinishedBefore is the opt-in alternative (RETENTION_ACTION=trash):
// up to batch live finished tasks last changed before cutoff go to the
// trash, trashed by the system, as DELETE /tasks/{id} would put them
// there, and are purged after the trash's own retention unless someone
// restores them. It returns them as trashed and the parents whose counts
// moved, for the caller's cache.
func (s *Store) TrashFinishedBefore(ctx context.Context, cutoff time.Time, batch int) ([]Trashed, []Task, error) {
	if batch < 1 {
		return nil, nil, fmt.Errorf("task: retention: batch %d must be positive", batch)
	}
	var (
		out     []Trashed
		parents []Task
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		q := pickFinished(batch) + `UPDATE tasks AS t
SET deleted_at = now(),
    deleted_by = '',
    version = t.version + 1
FROM picked
WHERE t.id = picked.id
RETURNING ` + qualifiedColumns + `, t.deleted_at, t.deleted_by`
		rows, _ := tx.Query(ctx, q, cutoff)
		var err error
		if out, err = pgx.CollectRows(rows, scanTrashed()); err != nil {
			return fmt.Errorf("task: retention: %w", err)
		}
		ids := make([]uuid.UUID, len(out))
		lines := make([]activity.Line, len(out))
		for i, t := range out {
			ids[i] = t.ID
			lines[i] = activity.Line{TaskID: t.ID, Kind: activity.Trashed}
			if err := s.addEvents(ctx, tx, t.ID, events.TaskTrashedData{Task: t.Snapshot()}); err != nil {
				return err
			}
		}
		if err := activity.AddMany(ctx, tx, lines); err != nil {
			return err
		}
		// Every task trashed here is closed.
		parents, err = s.moveParents(ctx, tx, "", ids, func(uuid.UUID) (int32, int32) { return -1, -1 })
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	for _, t := range out {
		s.publish(ctx, t.ID)
	}
	s.report(ctx, parents, nil)
	return out, parents, nil
}

// pickFinished is the CTE "picked" both retirements start from: up to
// batch live finished tasks last changed before $1, oldest first, locked,
// skipping those another transaction holds. Its predicate is
// tasks_live_finished_updated_at_idx's.
func pickFinished(batch int) string {
	return `
WITH picked AS (
  SELECT id
  FROM tasks
  WHERE status IN ('done', 'cancelled')
    AND deleted_at IS NULL
    AND archived_at IS NULL
    AND updated_at < $1
  ORDER BY updated_at
  LIMIT ` + strconv.Itoa(batch) + `
  FOR UPDATE SKIP LOCKED
)
`
}
