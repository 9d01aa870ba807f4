package report

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
)

// ErrLeaseLost: another worker claimed the report since this one did.
var ErrLeaseLost = errors.New("report lease lost")

// Claim is what claiming a report found.
type Claim int

const (
	// Claimed: the report is this caller's to build, as Report.Attempt.
	Claimed Claim = iota
	// Finished: it succeeded or failed already (now, perhaps, for having
	// used up its attempts).
	Finished
	// Busy: another worker holds a live lease on it.
	Busy
)

// Claim takes report id for building: a pending report, or a running one
// whose worker's lease ran out (it died, or lost its database), becomes
// running under a new attempt number with a lease until now+lease. A
// report that has had maxAttempts attempts is failed instead, emitting
// report.completed.
func (s *Store) Claim(ctx context.Context, id uuid.UUID, lease time.Duration, maxAttempts int) (Report, Claim, error) {
	var (
		r     Report
		claim Claim
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const q = `
SELECT ` + reportColumns + `, coalesce(lease_until > now(), false)
FROM reports
WHERE id = $1
FOR UPDATE`
		rows, _ := tx.Query(ctx, q, id)
		var leased bool
		var err error
		r, err = pgx.CollectOneRow(rows, func(row pgx.CollectableRow) (Report, error) {
			r, err := scanReport(rowWithExtra{row, &leased})
			return r, err
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("report: claim: %w", err)
		}
		switch {
		case r.Status == StatusSucceeded || r.Status == StatusFailed:
			claim = Finished
			return nil
		case r.Status == StatusRunning && leased:
			claim = Busy
			return nil
		case r.Attempt >= maxAttempts:
			claim = Finished
			r, err = s.finish(ctx, tx, r, r.Attempt, outcome{err: fmt.Sprintf("gave up after %d attempts", r.Attempt)})
			return err
		}
		const claimQ = `
UPDATE reports
SET status = 'running',
    attempt = attempt + 1,
    lease_until = now() + $2 * interval '1 millisecond',
    started_at = coalesce(started_at, now()),
    progress_rows = 0,
    total_rows = NULL,
    updated_at = now()
WHERE id = $1
RETURNING ` + reportColumns
		rows, _ = tx.Query(ctx, claimQ, id, lease.Milliseconds())
		r, err = collectReport(rows, "claim")
		claim = Claimed
		return err
	})
	if err != nil {
		return Report{}, 0, err
	}
	if claim == Finished && r.Status == StatusFailed {
		s.publish(ctx, id)
	}
	return r, claim, nil
}

// rowWithExtra scans the report columns and one more, into extra.
type rowWithExtra struct {
	pgx.CollectableRow
	extra any
}

func (r rowWithExtra) Scan(dest ...any) error { return r.CollectableRow.Scan(append(dest, r.extra)...) }

// SetTotal records how many rows attempt will write.
func (s *Store) SetTotal(ctx context.Context, id uuid.UUID, attempt int, total int64) error {
	const q = `
UPDATE reports
SET total_rows = $3,
    updated_at = now()
WHERE id = $1
  AND attempt = $2
  AND status = 'running'`
	tag, err := s.db.Primary.Exec(ctx, q, id, attempt, total)
	if err != nil {
		return fmt.Errorf("report: set total: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrLeaseLost
	}
	return nil
}

// AppendChunk stores chunk seq of attempt's content and, in the same
// transaction, records the progress and extends the lease. A worker whose
// attempt is no longer the report's gets ErrLeaseLost and nothing is kept.
func (s *Store) AppendChunk(ctx context.Context, id uuid.UUID, attempt, seq int, data []byte, rows int64, lease time.Duration) error {
	return pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const progress = `
UPDATE reports
SET progress_rows = $3,
    lease_until = now() + $4 * interval '1 millisecond',
    updated_at = now()
WHERE id = $1
  AND attempt = $2
  AND status = 'running'`
		tag, err := tx.Exec(ctx, progress, id, attempt, rows, lease.Milliseconds())
		if err != nil {
			return fmt.Errorf("report: append: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrLeaseLost
		}
		const q = `
INSERT INTO report_chunks (report_id, attempt, seq, data)
VALUES ($1, $2, $3, $4)`
		if _, err := tx.Exec(ctx, q, id, attempt, seq, data); err != nil {
			return fmt.Errorf("report: append: %w", err)
		}
		return nil
	})
}

// outcome is how an attempt ended: err empty for success.
type outcome struct {
	rows   int64
	bytes  int64
	chunks int
	err    string
}

// Succeed marks attempt's report succeeded with its content's size, drops
// chunks of other attempts, and emits report.completed, in one
// transaction. ErrLeaseLost if the attempt is no longer the report's.
func (s *Store) Succeed(ctx context.Context, r Report, rows, bytes int64, chunks int) (Report, error) {
	return s.end(ctx, r, outcome{rows: rows, bytes: bytes, chunks: chunks})
}

// Fail marks attempt's report failed for reason, which the requester
// reads, and emits report.completed.
func (s *Store) Fail(ctx context.Context, r Report, reason string) (Report, error) {
	return s.end(ctx, r, outcome{err: reason})
}

func (s *Store) end(ctx context.Context, r Report, o outcome) (Report, error) {
	var done Report
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		var err error
		done, err = s.finish(ctx, tx, r, r.Attempt, o)
		return err
	})
	if err != nil {
		return Report{}, err
	}
	s.publish(ctx, r.ID)
	return done, nil
}

func (s *Store) finish(ctx context.Context, tx pgx.Tx, r Report, attempt int, o outcome) (Report, error) {
	status, reason := StatusSucceeded, any(nil)
	if o.err != "" {
		status, reason = StatusFailed, o.err
	}
	const q = `
UPDATE reports
SET status = $3,
    progress_rows = CASE WHEN $3 = 'succeeded' THEN $4 ELSE progress_rows END,
    content_bytes = CASE WHEN $3 = 'succeeded' THEN $5::bigint END,
    chunks = CASE WHEN $3 = 'succeeded' THEN $6::integer END,
    error = $7,
    lease_until = NULL,
    finished_at = now(),
    updated_at = now()
WHERE id = $1
  AND attempt = $2
  AND status IN ('pending', 'running')
RETURNING ` + reportColumns
	rows, _ := tx.Query(ctx, q, r.ID, attempt, status, o.rows, o.bytes, o.chunks, reason)
	done, err := collectReport(rows, "finish")
	if errors.Is(err, ErrNotFound) {
		return Report{}, ErrLeaseLost
	}
	if err != nil {
		return Report{}, err
	}
	// A failed report keeps no content; a succeeded one only its own.
	const drop = `
DELETE FROM report_chunks
WHERE report_id = $1
  AND (attempt <> $2 OR $3 = 'failed')`
	if _, err := tx.Exec(ctx, drop, r.ID, attempt, status); err != nil {
		return Report{}, fmt.Errorf("report: finish: %w", err)
	}
	data := events.ReportCompletedData{
		ReportID: r.ID, Kind: string(r.Request.Kind), RequestedBy: r.RequestedBy, Status: string(status), Error: o.err,
	}
	if status == StatusSucceeded {
		data.Rows = o.rows
	}
	if err := s.addEvent(ctx, tx, r.ID, data); err != nil {
		return Report{}, err
	}
	return done, nil
}

// Release ends attempt's lease at once, so a redelivery can claim the
// report without waiting for the lease to run out. Best effort: after a
// failure the lease runs out by itself.
func (s *Store) Release(ctx context.Context, id uuid.UUID, attempt int) error {
	const q = `
UPDATE reports
SET lease_until = now(),
    updated_at = now()
WHERE id = $1
  AND attempt = $2
  AND status = 'running'`
	if _, err := s.db.Primary.Exec(ctx, q, id, attempt); err != nil {
		return fmt.Errorf("report: release: %w", err)
	}
	return nil
}
