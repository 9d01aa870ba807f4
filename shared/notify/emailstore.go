package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/people"
)

func insertEmail(ctx context.Context, tx pgx.Tx, notificationID uuid.UUID, eventID string, p people.Person, e Email, chart *uuid.UUID) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("notify: record: %w", err)
	}
	// A digest's chart is copied from its row ($9 NULL: none), so the
	// email is whole by itself, as every retry must send it.
	const q = `
INSERT INTO email_outbox (id, notification_id, event_id, to_address, to_name, subject, body, message_id, inline_png)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT chart_png FROM digests WHERE id = $9))`
	if _, err := tx.Exec(ctx, q, id, notificationID, eventID, p.Email, p.Name, e.Subject, e.Body, e.MessageID, chart); err != nil {
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
	case n.Kind == KindDigest:
		digestBody(&b, n)
		b.WriteString("\nYou get this email because you asked for a weekly digest; PUT /me/preferences {\"digest\": \"off\"} stops it.\n")
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
type Sent struct {
	Sent, Failed int
	// LeaseLost counts emails whose claim ran out during their send and
	// which another delivery claimed meanwhile: what this send did is not
	// recorded, and the other may send the email again. More than a rare
	// one says SMTP_CLAIM_LEASE is too short.
	LeaseLost int
}

// Waiting for another delivery's claim to end: the first look comes soon,
// as a send usually ends within milliseconds, later ones less often.
const (
	claimPollMin = 20 * time.Millisecond
	claimPollMax = time.Second
)

// markTimeout bounds a mark made after the caller gave up: the server has
// answered, and what it said must not be lost with the request.
const markTimeout = 5 * time.Second

// SendPending sends the unsent emails of event eventID and holds no
// connection, transaction or lock while an SMTP server is talked to: each
// email is claimed for lease by one UPDATE (attempts+1), sent, and marked
// by another, sent or failed for good. A mark applies only while the claim
// is still this call's.
//
// An email another delivery has claimed is left alone while that claim
// lives: this call sends the others first, then waits, holding nothing,
// until each such email is settled, or its claim released (the send
// failed) or run out (the sender died), and then claims it itself. So no
// two deliveries send one email at once, and a delivery that returns nil
// has seen each of its emails sent or refused.
//
// SendPending stops at the first retryable failure, after releasing the
// email with the error, and returns it: the event is then redelivered and
// the rest sent then.
//
// An email accepted by the server whose mark is then lost (the database
// went away in between) is sent again on redelivery, once its claim has
// run out: at least once, with the same Message-ID, is the best SMTP
// allows.
func (s *Store) SendPending(ctx context.Context, eventID string, lease time.Duration, send SendFunc) (Sent, error) {
	if lease <= 0 {
		return Sent{}, fmt.Errorf("notify: send pending: lease %s must be positive", lease)
	}
	const q = `
SELECT id
FROM email_outbox
WHERE event_id = $1
  AND sent_at IS NULL
  AND failed_at IS NULL
ORDER BY id`
	rows, _ := s.db.Primary.Query(ctx, q, eventID)
	pending, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return Sent{}, fmt.Errorf("notify: pending emails: %w", err)
	}
	var out Sent
	for poll := claimPollMin; ; poll = min(2*poll, claimPollMax) {
		var busy []uuid.UUID
		wait := poll
		for _, id := range pending {
			c, left, err := s.claim(ctx, id, lease)
			if err != nil {
				return out, err
			}
			if c == nil {
				if left > 0 { // else sent, or given up, by a concurrent delivery
					busy = append(busy, id)
					wait = min(wait, left)
				}
				continue
			}
			o, err := s.deliver(ctx, c, lease, send)
			if err != nil {
				return out, err
			}
			switch o {
			case delivered:
				out.Sent++
			case refused:
				out.Failed++
			case overtaken:
				out.LeaseLost++
			}
		}
		if len(busy) == 0 {
			return out, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return out, fmt.Errorf("notify: waiting for a concurrent delivery's emails: %w", ctx.Err())
		case <-t.C:
		}
		pending = busy
	}
}

// outcome is what became of one claimed email.
type outcome int

const (
	released  outcome = iota // the server cannot take it now: left for a redelivery
	delivered                // the server accepted it
	refused                  // the server refused it for good
	overtaken                // our claim ran out and another delivery took the email
)

// claimedEmail is an email claimed for sending; token names the claim.
type claimedEmail struct {
	id, token uuid.UUID
	email     Email
}

// claim claims email id for lease, in a statement of its own. When it
// cannot, busy says why: 0 when the email is settled (sent, failed or
// purged), else about how long another delivery's claim still runs.
func (s *Store) claim(ctx context.Context, id uuid.UUID, lease time.Duration) (c *claimedEmail, busy time.Duration, err error) {
	token, err := uuid.NewRandom()
	if err != nil {
		return nil, 0, fmt.Errorf("notify: claim email: %w", err)
	}
	// Of two claims at once, the second waits for the first to commit
	// and then checks the WHERE again on the row it left (READ
	// COMMITTED): it finds the claim live and updates nothing.
	const q = `
UPDATE email_outbox
SET claim_token = $2,
    claimed_until = now() + $3 * interval '1 millisecond',
    attempts = attempts + 1
WHERE id = $1
  AND sent_at IS NULL
  AND failed_at IS NULL
  AND (claimed_until IS NULL OR claimed_until <= now())
RETURNING to_address, to_name, subject, body, message_id, inline_png`
	rows, _ := s.db.Primary.Query(ctx, q, id, token, lease.Milliseconds())
	e, err := pgx.CollectOneRow(rows, func(r pgx.CollectableRow) (Email, error) {
		e := Email{ID: id.String()}
		err := r.Scan(&e.ToAddress, &e.ToName, &e.Subject, &e.Body, &e.MessageID, &e.InlinePNG)
		return e, err
	})
	if err == nil {
		return &claimedEmail{id: id, token: token, email: e}, 0, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("notify: claim email: %w", err)
	}
	// At least 1ms while the email is pending: a claim released or run
	// out since the UPDATE is tried again at once, not taken for settled.
	const held = `
SELECT greatest(ceil(extract(epoch FROM claimed_until - now()) * 1000), 1)::bigint
FROM email_outbox
WHERE id = $1
  AND sent_at IS NULL
  AND failed_at IS NULL`
	var ms int64
	err = s.db.Primary.QueryRow(ctx, held, id).Scan(&ms)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("notify: claim email: %w", err)
	}
	return nil, time.Duration(ms) * time.Millisecond, nil
}

// deliver sends claimed email c, within its lease, and records what came
// of it under its claim: sent, failed for good, or released with the
// error for the redelivery.
func (s *Store) deliver(ctx context.Context, c *claimedEmail, lease time.Duration, send SendFunc) (outcome, error) {
	// Past the lease another delivery may send the email too: a send
	// that could outlive it is cut short. (Sender.Send, bounded by
	// SMTP_TIMEOUT, always ends sooner.)
	sctx, cancel := context.WithTimeout(ctx, lease)
	sendErr := send(sctx, c.email)
	cancel()

	var ue *UndeliverableError
	var q string
	// A settled email drops its inline image (a digest's chart, 60 KiB):
	// nothing sends it again, and the row is kept for
	// NOTIFICATION_RETENTION_DAYS.
	o := delivered
	switch {
	case sendErr == nil:
		q = `
UPDATE email_outbox
SET sent_at = now(),
    last_error = NULL,
    inline_png = NULL,
    claim_token = NULL,
    claimed_until = NULL
WHERE id = $1
  AND claim_token = $2`
	case errors.As(sendErr, &ue):
		o = refused
		q = `
UPDATE email_outbox
SET failed_at = now(),
    last_error = $3,
    inline_png = NULL,
    claim_token = NULL,
    claimed_until = NULL
WHERE id = $1
  AND claim_token = $2`
	default:
		// Released, so the redelivery need not wait for the lease, with
		// the error kept for operators.
		o = released
		q = `
UPDATE email_outbox
SET last_error = $3,
    claim_token = NULL,
    claimed_until = NULL
WHERE id = $1
  AND claim_token = $2`
	}
	args := []any{c.id, c.token}
	if sendErr != nil {
		args = append(args, truncate(sendErr.Error(), 1000))
	}
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
	defer mcancel()
	tag, err := s.db.Primary.Exec(mctx, q, args...)
	if o == released {
		failed := fmt.Errorf("%w: %w", errMailUnavailable, sendErr)
		if err != nil {
			// The lease runs out by itself.
			return released, errors.Join(failed, fmt.Errorf("notify: release email: %w", err))
		}
		return released, failed
	}
	if err != nil {
		return o, fmt.Errorf("notify: mark email: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return overtaken, nil
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
