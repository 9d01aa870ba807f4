package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/activity"
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
func (s *Store) UpdateMany(ctx context.Context, actor string, ids []uuid.UUID, change func(cur Task) (Task, error)) ([]Task, error) {
	if len(ids) == 0 || len(ids) > MaxBulk {
		return nil, fmt.Errorf("task: bulk: %d tasks, want 1 to %d", len(ids), MaxBulk)
	}
	out := make([]Task, len(ids))
	var wrote []uuid.UUID
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		wrote = wrote[:0]
		const lock = `
SELECT ` + Columns + `
FROM tasks
WHERE id = ANY($1)
ORDER BY id
FOR UPDATE`
		rows, _ := tx.Query(ctx, lock, ids)
		found, err := pgx.CollectRows(rows, ScanRows())
		if err != nil {
			return fmt.Errorf("task: bulk: %w", err)
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
			if err != nil {
				refused = append(refused, Failure{i, id, err})
				continue
			}
			next[i] = n
		}
		if len(refused) > 0 {
			return &BulkError{Failures: refused}
		}
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
			updated, err := writeTask(ctx, tx, id, next[i])
			if err != nil {
				return err
			}
			if err := activity.Add(ctx, tx, id, actor, activity.Updated, activityChanges(&cur, updated)); err != nil {
				return err
			}
			if err := s.addEvents(ctx, tx, id, changeData(actor, cur, updated)...); err != nil {
				return err
			}
			out[i] = updated
			wrote = append(wrote, id)
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
	return out, nil
}
