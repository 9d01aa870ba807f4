package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// Consumer is notify's name in processed_events.
const Consumer = "notify"

// ErrNotFound: no such notification for this recipient.
var ErrNotFound = errs.New(errs.NotFound, "notification not found", "")

// Notification is one inbox entry, and the API's JSON representation.
type Notification struct {
	ID        uuid.UUID       `json:"id" db:"id"`
	Kind      Kind            `json:"kind" db:"kind"`
	EventID   string          `json:"event_id" db:"event_id"`
	Actor     string          `json:"actor" db:"actor"`
	TaskID    *uuid.UUID      `json:"task_id" db:"task_id"`
	ReportID  *uuid.UUID      `json:"report_id" db:"report_id"`
	Summary   string          `json:"summary" db:"summary"`
	Detail    json.RawMessage `json:"detail" db:"detail"`
	CreatedAt time.Time       `json:"created_at" db:"created_at"`
	ReadAt    *time.Time      `json:"read_at" db:"read_at"`
}

const notificationColumns = "id, kind, event_id, actor, task_id, report_id, summary, detail, created_at, read_at"

// Store reads and writes notifications, their emails and notify's
// processed-event records.
type Store struct{ db *pg.DB }

// NewStore returns a Store on db.
func NewStore(db *pg.DB) (*Store, error) {
	if db == nil || db.Primary == nil || db.Replica == nil {
		return nil, errors.New("notify: NewStore needs a database")
	}
	return &Store{db: db}, nil
}

// Recorded is what Record did with one event.
type Recorded struct {
	Duplicate     bool // the event was processed before: nothing written
	Notifications int
	Emails        int // emails queued in email_outbox
}

// Record stores the notices of event eventID exactly once: the
// processed-event record, the notifications and, when emailFrom is set,
// an email for each recipient with a known address, all in one
// transaction. A redelivered event finds its record and writes nothing,
// so its emails are neither queued twice nor lost: SendPending sends what
// is still unsent.
func (s *Store) Record(ctx context.Context, eventID string, notices []Notice, emailFrom string) (Recorded, error) {
	var rec Recorded
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const mark = `
INSERT INTO processed_events (consumer, event_id)
VALUES ($1, $2)
ON CONFLICT DO NOTHING`
		tag, err := tx.Exec(ctx, mark, Consumer, eventID)
		if err != nil {
			return fmt.Errorf("notify: record: %w", err)
		}
		if tag.RowsAffected() == 0 {
			rec.Duplicate = true
			return nil
		}
		dir, err := people.Lookup(ctx, tx, mentioned(notices))
		if err != nil {
			return err
		}
		name := func(subject string) string {
			if p, ok := dir[subject]; ok && p.Name != "" {
				return p.Name
			}
			return subject
		}
		for _, n := range notices {
			id, inserted, err := insertNotification(ctx, tx, eventID, n, n.Summary(name))
			if err != nil {
				return err
			}
			if !inserted {
				continue
			}
			rec.Notifications++
			p, ok := dir[n.Recipient]
			if emailFrom == "" || !ok || p.Email == "" {
				continue
			}
			if err := insertEmail(ctx, tx, id, eventID, p, composeEmail(eventID, n, p, name, emailFrom), n.Chart); err != nil {
				return err
			}
			rec.Emails++
		}
		return nil
	})
	if err != nil {
		return Recorded{}, err
	}
	return rec, nil
}

// mentioned lists every subject the notices name: recipients for their
// addresses, actors and assignees for their names.
func mentioned(notices []Notice) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range notices {
		add(n.Recipient)
		add(n.Actor)
		for _, k := range []string{"old_assignee_id", "new_assignee_id"} {
			if p, ok := n.Detail[k].(*string); ok && p != nil {
				add(*p)
			}
		}
	}
	return out
}

func insertNotification(ctx context.Context, tx pgx.Tx, eventID string, n Notice, summary string) (uuid.UUID, bool, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("notify: record: %w", err)
	}
	detail, err := json.Marshal(n.Detail)
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("notify: record: %w", err)
	}
	// The unique (recipient, event_id) backs processed_events up once its
	// record has been purged.
	const q = `
INSERT INTO notifications (id, recipient, event_id, kind, actor, task_id, report_id, summary, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (recipient, event_id) DO NOTHING`
	// detail as text: behind PgBouncer (exec mode) a []byte is sent as
	// bytea, which jsonb rejects.
	tag, err := tx.Exec(ctx, q, id, n.Recipient, eventID, n.Kind, n.Actor, n.TaskID, n.ReportID, summary, string(detail))
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("notify: record: %w", err)
	}
	return id, tag.RowsAffected() == 1, nil
}

// ListQuery selects a page of one recipient's inbox, newest first.
type ListQuery struct {
	Recipient  string
	UnreadOnly bool
	Limit      int
	After      *task.Cursor // resume strictly after this position
}

// Page is one page of an inbox; Next is nil on the last page. Unread
// counts every unread notification of the recipient.
type Page struct {
	Items  []Notification
	Next   *task.Cursor
	Unread int64
}

// List returns a page of q.Recipient's notifications, read from the replica.
func (s *Store) List(ctx context.Context, q ListQuery) (Page, error) {
	if q.Recipient == "" || q.Limit < 1 {
		return Page{}, errors.New("notify: list needs a recipient and a positive limit")
	}
	args := []any{q.Recipient, q.Limit + 1}
	conds := []string{"recipient = $1"}
	if q.UnreadOnly {
		conds = append(conds, "read_at IS NULL")
	}
	if q.After != nil {
		args = append(args, q.After.CreatedAt, q.After.ID)
		conds = append(conds, "(created_at, id) < ($3, $4)")
	}
	sql := `
SELECT ` + notificationColumns + `
FROM notifications
WHERE ` + strings.Join(conds, "\n  AND ") + `
ORDER BY created_at DESC, id DESC
LIMIT $2`
	rows, _ := s.db.Replica.Query(ctx, sql, args...)
	items, err := pgx.CollectRows(rows, pgx.RowToStructByName[Notification])
	if err != nil {
		return Page{}, fmt.Errorf("notify: list: %w", err)
	}
	page := Page{Items: items}
	if len(items) > q.Limit {
		page.Items = items[:q.Limit]
		last := page.Items[len(page.Items)-1]
		page.Next = &task.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	const unread = `
SELECT count(*)
FROM notifications
WHERE recipient = $1
  AND read_at IS NULL`
	if err := s.db.Replica.QueryRow(ctx, unread, q.Recipient).Scan(&page.Unread); err != nil {
		return Page{}, fmt.Errorf("notify: count unread: %w", err)
	}
	return page, nil
}

// MarkRead marks a notification of recipient read (again: it keeps the
// first read time) and returns it. Someone else's notification is
// ErrNotFound, like a missing one.
func (s *Store) MarkRead(ctx context.Context, recipient string, id uuid.UUID) (Notification, error) {
	const q = `
UPDATE notifications
SET read_at = coalesce(read_at, now())
WHERE id = $1
  AND recipient = $2
RETURNING ` + notificationColumns
	rows, _ := s.db.Primary.Query(ctx, q, id, recipient)
	n, err := pgx.CollectOneRow(rows, pgx.RowToStructByName[Notification])
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, ErrNotFound
	}
	if err != nil {
		return Notification{}, fmt.Errorf("notify: mark read: %w", err)
	}
	return n, nil
}

// PurgeRead deletes up to batch notifications read before cutoff (their
// emails go with them). Rows another run holds are skipped, so concurrent
// cleanups share the work instead of waiting.
func (s *Store) PurgeRead(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	const q = `
DELETE FROM notifications
WHERE id IN (
  SELECT id
  FROM notifications
  WHERE read_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`
	return s.purge(ctx, "notifications", q, cutoff, batch)
}

// PurgeProcessed deletes up to batch processed-event records (of every
// consumer) older than cutoff, which must lie beyond the redelivery window.
func (s *Store) PurgeProcessed(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	const q = `
DELETE FROM processed_events
WHERE (consumer, event_id) IN (
  SELECT consumer, event_id
  FROM processed_events
  WHERE processed_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`
	return s.purge(ctx, "processed events", q, cutoff, batch)
}

func (s *Store) purge(ctx context.Context, what, q string, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("notify: purge %s: batch %d must be positive", what, batch)
	}
	tag, err := s.db.Primary.Exec(ctx, q, cutoff, batch)
	if err != nil {
		return 0, fmt.Errorf("notify: purge %s: %w", what, err)
	}
	return tag.RowsAffected(), nil
}
