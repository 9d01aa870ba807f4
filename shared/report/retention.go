package report

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/pg"
)

// PurgeBefore deletes up to batch reports created before cutoff, whatever
// their state, with their content. Rows another run holds are skipped.
func (s *Store) PurgeBefore(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("report: purge: batch %d must be positive", batch)
	}
	const q = `
DELETE FROM reports
WHERE id IN (
  SELECT id
  FROM reports
  WHERE created_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`
	tag, err := s.db.Primary.Exec(ctx, q, cutoff, batch)
	if err != nil {
		return 0, fmt.Errorf("report: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Abandoned is the reason a report failed by FailAbandoned gives.
const Abandoned = "abandoned: no worker finished the report; request it again"

// FailAbandoned fails up to batch reports that nothing will build any more:
// pending since before cutoff (their report.requested event never reached
// a worker), or running with a lease that ran out before cutoff (their
// worker died, and the event's redeliveries ended, dead-lettered). Each
// emits report.completed, and stops counting against its requester's
// unfinished reports. Rows a worker or another run holds are skipped.
func (s *Store) FailAbandoned(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("report: abandon: batch %d must be positive", batch)
	}
	var failed []uuid.UUID
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		failed = failed[:0]
		const q = `
SELECT ` + reportColumns + `
FROM reports
WHERE (status = 'pending' AND created_at < $1)
   OR (status = 'running' AND lease_until < $1)
LIMIT $2
FOR UPDATE SKIP LOCKED`
		rows, _ := tx.Query(ctx, q, cutoff, batch)
		stale, err := pgx.CollectRows(rows, scanReport)
		if err != nil {
			return fmt.Errorf("report: abandon: %w", err)
		}
		for _, r := range stale {
			if _, err := s.finish(ctx, tx, r, r.Attempt, outcome{err: Abandoned}); err != nil {
				return err
			}
			failed = append(failed, r.ID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range failed {
		s.publish(ctx, id)
	}
	return int64(len(failed)), nil
}
