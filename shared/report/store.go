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
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// Errors the store returns; callers use errors.Is.
var (
	ErrNotFound = errs.New(errs.NotFound, "report not found", "")
	// ErrTooMany: the requester has as many unfinished reports as allowed.
	ErrTooMany = errs.New(errs.TooMany, "too many unfinished reports",
		"you have as many unfinished reports as allowed; wait for one to finish").
		Problem("too-many-reports", "Too many reports").After(30 * time.Second)
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

const reportColumns = "id, kind, format, params, requested_by, scope_subject, scope_projects, status, attempt, progress_rows, total_rows, content_bytes, chunks, coalesce(error, ''), created_at, started_at, finished_at"

func scanReport(row pgx.CollectableRow) (Report, error) {
	var r Report
	var params []byte
	var subject *string
	var projects []string
	err := row.Scan(&r.ID, &r.Request.Kind, &r.Request.Format, &params, &r.RequestedBy, &subject, &projects, &r.Status, &r.Attempt,
		&r.ProgressRows, &r.TotalRows, &r.ContentBytes, &r.Chunks, &r.Error, &r.CreatedAt, &r.StartedAt, &r.FinishedAt)
	if err != nil {
		return r, err
	}
	r.Scope = scopeOf(subject, projects)
	var p struct {
		Filters Filters `json:"filters"`
		Period  *Period `json:"period"`
		Project string  `json:"project"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return r, fmt.Errorf("report %s: params: %w", r.ID, err)
	}
	r.Request.Filters, r.Request.Period, r.Request.Project = p.Filters, p.Period, p.Project
	return r, nil
}

// scopeOf reads a recorded scope: no subject is every task; a report from
// before projects (no projects recorded) covers its requester's personal
// project, where the tasks it owned then are, and what is assigned to it.
func scopeOf(subject *string, projects []string) *task.Scope {
	if subject == nil {
		return nil
	}
	if projects == nil {
		projects = []string{project.PersonalKey(*subject)}
	}
	return &task.Scope{Projects: projects, Assignee: *subject}
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
// report.requested event, in one transaction; a requester who reached one
// of limits (settings below 1 at their defaults) gets a TooMany error
// instead: ErrTooMany for MaxActive, a problem naming the limit for the
// others.
func (s *Store) Create(ctx context.Context, req Request, requestedBy string, scope *task.Scope, limits Limits) (Report, error) {
	limits = limits.orDefaults()
	id, err := uuid.NewV7()
	if err != nil {
		return Report{}, fmt.Errorf("report: create: %w", err)
	}
	params, err := json.Marshal(struct {
		Filters Filters `json:"filters"`
		Period  *Period `json:"period,omitempty"`
		Project string  `json:"project,omitempty"`
	}{req.Filters, req.Period, req.Project})
	if err != nil {
		return Report{}, fmt.Errorf("report: create: %w", err)
	}
	var created Report
	err = pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		// One requester's creations queue on this lock, so two at once
		// cannot both pass a count.
		const lock = `SELECT pg_advisory_xact_lock(hashtext('report:' || $1))`
		if _, err := tx.Exec(ctx, lock, requestedBy); err != nil {
			return fmt.Errorf("report: create: %w", err)
		}
		if err := withinLimits(ctx, tx, requestedBy, limits); err != nil {
			return err
		}
		const q = `
INSERT INTO reports (id, kind, format, params, requested_by, scope_subject, scope_projects)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING ` + reportColumns
		// params as text: behind PgBouncer (exec mode) a []byte is sent as
		// bytea, which jsonb rejects.
		var subject *string
		var projects []string
		if scope != nil {
			subject, projects = &scope.Assignee, scope.Projects
			if projects == nil {
				projects = []string{} // none, as opposed to NULL: recorded before projects
			}
		}
		rows, _ := tx.Query(ctx, q, id, req.Kind, req.Format, string(params), requestedBy, subject, projects)
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

// projectExists returns project.ErrNotFound unless project key exists.
func (s *Store) projectExists(ctx context.Context, key string) error {
	const q = `
SELECT EXISTS (
  SELECT
  FROM projects
  WHERE key = $1
)`
	var ok bool
	if err := s.db.Primary.QueryRow(ctx, q, key).Scan(&ok); err != nil {
		return fmt.Errorf("report: project: %w", err)
	}
	if !ok {
		return project.ErrNotFound
	}
	return nil
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
