package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
)

// Errors the store returns; callers use errors.Is.
var (
	ErrNotFound = errs.New(errs.NotFound, "report not found", "")
	// ErrTooMany: the requester has as many unfinished reports as allowed.
	ErrTooMany = errs.New(errs.TooMany, "too many unfinished reports",
		"you have as many unfinished reports as allowed; wait for one to finish").
		Problem("too-many-reports", "Too many reports").After(30 * time.Second)
	// ErrLeaseLost: another worker claimed the report since this one did.
	ErrLeaseLost = errors.New("report lease lost")
)

// Store reads and writes reports and their content. Everything goes to
// the primary: a report is polled right after it was requested, and its
// content must be read where its status says it is complete.
type Store struct {
	db    *pg.DB
	topic string           // of report events
	pub   outbox.Publisher // nil: events wait for the relay
}

// Option configures a Store.
type Option func(*Store)

// WithPublisher makes writes publish their events right after commit,
// best effort: a failure leaves them to relay-outbox.
func WithPublisher(p outbox.Publisher) Option { return func(s *Store) { s.pub = p } }

// WithTopic sets the Kafka topic of report events (default
// events.DefaultReportsTopic).
func WithTopic(topic string) Option { return func(s *Store) { s.topic = topic } }

// NewStore returns a Store on db.
func NewStore(db *pg.DB, opts ...Option) (*Store, error) {
	if db == nil || db.Primary == nil {
		return nil, errors.New("report: NewStore needs a database")
	}
	s := &Store{db: db, topic: events.DefaultReportsTopic}
	for _, o := range opts {
		o(s)
	}
	if s.topic == "" {
		return nil, errors.New("report: NewStore: empty events topic")
	}
	return s, nil
}

const reportColumns = "id, kind, format, params, requested_by, coalesce(scope_subject, ''), status, attempt, progress_rows, total_rows, content_bytes, chunks, coalesce(error, ''), created_at, started_at, finished_at"

func scanReport(row pgx.CollectableRow) (Report, error) {
	var r Report
	var params []byte
	err := row.Scan(&r.ID, &r.Request.Kind, &r.Request.Format, &params, &r.RequestedBy, &r.Scope, &r.Status, &r.Attempt,
		&r.ProgressRows, &r.TotalRows, &r.ContentBytes, &r.Chunks, &r.Error, &r.CreatedAt, &r.StartedAt, &r.FinishedAt)
	if err != nil {
		return r, err
	}
	var p struct {
		Filters Filters `json:"filters"`
		Period  *Period `json:"period"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return r, fmt.Errorf("report %s: params: %w", r.ID, err)
	}
	r.Request.Filters, r.Request.Period = p.Filters, p.Period
	return r, nil
}

func collectReport(rows pgx.Rows, op string) (Report, error) {
	r, err := pgx.CollectOneRow(rows, scanReport)
	if errors.Is(err, pgx.ErrNoRows) {
		return Report{}, ErrNotFound
	}
	if err != nil {
		return Report{}, fmt.Errorf("report: %s: %w", op, err)
	}
	return r, nil
}

// Create records a pending report for requestedBy with scope, and its
// report.requested event, in one transaction; a requester with maxActive
// unfinished reports gets ErrTooMany instead.
func (s *Store) Create(ctx context.Context, req Request, requestedBy, scope string, maxActive int) (Report, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Report{}, fmt.Errorf("report: create: %w", err)
	}
	params, err := json.Marshal(struct {
		Filters Filters `json:"filters"`
		Period  *Period `json:"period,omitempty"`
	}{req.Filters, req.Period})
	if err != nil {
		return Report{}, fmt.Errorf("report: create: %w", err)
	}
	var created Report
	err = pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		// One requester's creations queue on this lock, so two at once
		// cannot both pass the count.
		const lock = `SELECT pg_advisory_xact_lock(hashtext('report:' || $1))`
		if _, err := tx.Exec(ctx, lock, requestedBy); err != nil {
			return fmt.Errorf("report: create: %w", err)
		}
		const count = `
SELECT count(*)
FROM reports
WHERE requested_by = $1
  AND status IN ('pending', 'running')`
		var active int
		if err := tx.QueryRow(ctx, count, requestedBy).Scan(&active); err != nil {
			return fmt.Errorf("report: create: %w", err)
		}
		if active >= maxActive {
			return ErrTooMany
		}
		const q = `
INSERT INTO reports (id, kind, format, params, requested_by, scope_subject)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''))
RETURNING ` + reportColumns
		// params as text: behind PgBouncer (exec mode) a []byte is sent as
		// bytea, which jsonb rejects.
		rows, _ := tx.Query(ctx, q, id, req.Kind, req.Format, string(params), requestedBy, scope)
		if created, err = collectReport(rows, "create"); err != nil {
			return err
		}
		return s.addEvent(ctx, tx, id, events.ReportRequestedData{ReportID: id, Kind: string(req.Kind), RequestedBy: requestedBy})
	})
	if err != nil {
		return Report{}, err
	}
	s.publish(ctx, id)
	return created, nil
}

// Get returns the report with id.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (Report, error) {
	const q = `
SELECT ` + reportColumns + `
FROM reports
WHERE id = $1`
	rows, _ := s.db.Primary.Query(ctx, q, id)
	return collectReport(rows, "get")
}

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

// Chunk returns chunk seq of a succeeded report's content.
func (s *Store) Chunk(ctx context.Context, r Report, seq int) ([]byte, error) {
	const q = `
SELECT data
FROM report_chunks
WHERE report_id = $1
  AND attempt = $2
  AND seq = $3`
	var data []byte
	err := s.db.Primary.QueryRow(ctx, q, r.ID, r.Attempt, seq).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("report %s: chunk %d is missing", r.ID, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("report: chunk: %w", err)
	}
	return data, nil
}

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

// addEvent adds a report event to the outbox, in tx.
func (s *Store) addEvent(ctx context.Context, tx pgx.Tx, id uuid.UUID, data events.Data) error {
	ev, err := events.NewReportEvent(s.topic, id, data)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, ev)
}

// publish publishes id's events after its write committed (best effort).
func (s *Store) publish(ctx context.Context, id uuid.UUID) {
	outbox.PublishCommitted(ctx, s.db.Primary, s.pub, id.String())
}
