package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/notify/people"
	"github.com/taskfn/taskfn/shared/pg"
)

func insertEmail(ctx context.Context, tx pgx.Tx, notificationID uuid.UUID, eventID string, p people.Person, e Email) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("notify: record: %w", err)
	}
	const q = `
INSERT INTO email_outbox (id, notification_id, event_id, to_address, to_name, subject, body, message_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	if _, err := tx.Exec(ctx, q, id, notificationID, eventID, p.Email, p.Name, e.Subject, e.Body, e.MessageID); err != nil {
		return fmt.Errorf("notify: record email: %w", err)
	}
	return nil
}

// composeEmail renders the email of notice n to p. It is rendered once,
// when recorded, so every retry sends the same message.
func composeEmail(eventID string, n Notice, p people.Person, name func(string) string, from string) Email {
	summary := n.Summary(name)
	var b strings.Builder
	greeting := p.Name
	if greeting == "" {
		greeting = "there"
	}
	fmt.Fprintf(&b, "Hello %s,\n\n%s.\n\n", greeting, summary)
	switch {
	case n.TaskID != nil:
		fmt.Fprintf(&b, "Task: %s\nId: %s\n", n.TaskTitle, n.TaskID)
		b.WriteString("\nYou get this email because you own or are assigned to this task.\n")
	case n.ReportID != nil:
		fmt.Fprintf(&b, "Report: /reports/%s\n", n.ReportID)
		if e, ok := n.Detail["error"].(string); ok && e != "" {
			fmt.Fprintf(&b, "Error: %s\n", e)
		}
		b.WriteString("\nYou get this email because you requested this report.\n")
	}
	b.WriteString("The same notice is in your taskfn inbox.\n")
	subject := summary
	if r := []rune(subject); len(r) > 150 {
		subject = string(r[:149]) + "…"
	}
	return Email{Subject: "[taskfn] " + subject, Body: b.String(), MessageID: messageID(eventID, n.Recipient, from)}
}

// SendFunc delivers one email; an *UndeliverableError is final.
type SendFunc func(ctx context.Context, e Email) error

// Sent counts what SendPending did.
type Sent struct{ Sent, Failed int }

// SendPending sends the unsent emails of event eventID, each under a row
// lock so concurrent deliveries of the same event never send one twice,
// and marks each sent (or failed for good) in the same transaction. It
// stops at the first retryable failure, after recording the attempt, and
// returns it: the event is then redelivered and the rest sent then.
//
// An email accepted by the server whose mark is then lost (the database
// went away in between) is sent again on redelivery: at least once, with
// the same Message-ID, is the best SMTP allows.
func (s *Store) SendPending(ctx context.Context, eventID string, send SendFunc) (Sent, error) {
	const q = `
SELECT id
FROM email_outbox
WHERE event_id = $1
  AND sent_at IS NULL
  AND failed_at IS NULL
ORDER BY id`
	rows, _ := s.db.Primary.Query(ctx, q, eventID)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return Sent{}, fmt.Errorf("notify: pending emails: %w", err)
	}
	var out Sent
	for _, id := range ids {
		o, err := s.sendOne(ctx, id, send)
		if err != nil {
			return out, err
		}
		switch o {
		case delivered:
			out.Sent++
		case refused:
			out.Failed++
		}
	}
	return out, nil
}

// outcome is what became of one email.
type outcome int

const (
	skipped   outcome = iota // a concurrent delivery had dealt with it
	delivered                // the server accepted it
	refused                  // the server refused it for good
)

// sendOne sends one email under its row lock.
func (s *Store) sendOne(ctx context.Context, id uuid.UUID, send SendFunc) (o outcome, err error) {
	var sendErr error
	err = pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const lock = `
SELECT id, to_address, to_name, subject, body, message_id
FROM email_outbox
WHERE id = $1
  AND sent_at IS NULL
  AND failed_at IS NULL
FOR UPDATE`
		rows, _ := tx.Query(ctx, lock, id)
		e, err := pgx.CollectOneRow(rows, func(r pgx.CollectableRow) (Email, error) {
			var e Email
			var eid uuid.UUID
			err := r.Scan(&eid, &e.ToAddress, &e.ToName, &e.Subject, &e.Body, &e.MessageID)
			e.ID = eid.String()
			return e, err
		})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // sent, or given up, by a concurrent delivery
		}
		if err != nil {
			return fmt.Errorf("notify: lock email: %w", err)
		}
		sendErr = send(ctx, e)
		var ue *UndeliverableError
		var q string
		switch {
		case sendErr == nil:
			o = delivered
			q = `
UPDATE email_outbox
SET sent_at = now(),
    attempts = attempts + 1,
    last_error = NULL
WHERE id = $1`
		case errors.As(sendErr, &ue):
			o = refused
			q = `
UPDATE email_outbox
SET failed_at = now(),
    attempts = attempts + 1,
    last_error = $2
WHERE id = $1`
		default:
			// Recorded and committed, then returned: the attempt is
			// kept for operators, and the event retried.
			q = `
UPDATE email_outbox
SET attempts = attempts + 1,
    last_error = $2
WHERE id = $1`
		}
		args := []any{id}
		if sendErr != nil {
			args = append(args, truncate(sendErr.Error(), 1000))
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("notify: mark email: %w", err)
		}
		return nil
	})
	if err != nil {
		return skipped, err
	}
	var ue *UndeliverableError
	if sendErr != nil && !errors.As(sendErr, &ue) {
		return skipped, fmt.Errorf("%w: %w", errMailUnavailable, sendErr)
	}
	return o, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// PurgeEmails deletes up to batch email records created before cutoff,
// sent or not: an email that old is no longer news.
func (s *Store) PurgeEmails(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	const q = `
DELETE FROM email_outbox
WHERE id IN (
  SELECT id
  FROM email_outbox
  WHERE created_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`
	return s.purge(ctx, "emails", q, cutoff, batch)
}
