package digest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
)

// Store is the one place with SQL for digest preferences and digests.
type Store struct {
	db    *pg.DB
	topic string
	pub   outbox.Publisher // nil: the relay publishes
}

// NewStore returns a Store on db; digest events go to topic, published
// right after commit through pub when it is set.
func NewStore(db *pg.DB, topic string, pub outbox.Publisher) (*Store, error) {
	if db == nil || db.Primary == nil || db.Replica == nil {
		return nil, errors.New("digest: NewStore needs a database")
	}
	if topic == "" {
		topic = events.DefaultTasksTopic
	}
	return &Store{db: db, topic: topic, pub: pub}, nil
}

// Get returns subject's preferences, Defaults when it set none. Read from
// the primary: a GET right after a PUT shows what was put.
func (s *Store) Get(ctx context.Context, subject string) (Preferences, error) {
	const q = `
SELECT digest, time_zone
FROM digest_preferences
WHERE subject = $1`
	p := Defaults
	err := s.db.Primary.QueryRow(ctx, q, subject).Scan(&p.Digest, &p.TimeZone)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Preferences{}, fmt.Errorf("digest: get preferences: %w", err)
	}
	return p, nil
}

// Put stores subject's preferences p at now and reschedules its digest:
// weekly makes the current ISO week's digest due at its Monday 07:00 in
// p's zone (at once when that passed), unless that week's went out
// (FirstDue); off takes the subject off the tick's list. One statement,
// no lock held across round trips, and no write when nothing changes (a
// client saving the same settings again). A tick filing a digest at the
// same moment needs none: Record decides again under the row's lock, so a
// next_digest_at this statement set from a last_week just superseded
// costs a tick a look, never a second digest.
func (s *Store) Put(ctx context.Context, subject string, p Preferences, now time.Time) error {
	var (
		week       string
		due, after *time.Time
	)
	if p.Digest == Weekly {
		loc := p.Location()
		d := DueAt(now, loc)
		a := weekAfter(d, loc)
		week, due, after = Week(now, loc), &d, &a
	}
	const q = `
INSERT INTO digest_preferences AS d (subject, digest, time_zone, next_digest_at)
VALUES ($1, $2, $3, $5)
ON CONFLICT (subject) DO UPDATE
SET digest = EXCLUDED.digest,
    time_zone = EXCLUDED.time_zone,
    next_digest_at = CASE WHEN d.last_week = $4::text THEN $6::timestamptz ELSE $5::timestamptz END,
    updated_at = now()
WHERE (d.digest, d.time_zone) IS DISTINCT FROM (EXCLUDED.digest, EXCLUDED.time_zone)
   OR d.next_digest_at IS DISTINCT FROM (CASE WHEN d.last_week = $4::text THEN $6::timestamptz ELSE $5::timestamptz END)`
	if _, err := s.db.Primary.Exec(ctx, q, subject, p.Digest, p.TimeZone, week, due, after); err != nil {
		return fmt.Errorf("digest: put preferences: %w", err)
	}
	return nil
}

// Claim is a subject a tick took: its zone, and the week last sent.
type Claim struct {
	Subject  string
	TimeZone string
	LastWeek string
}

// Claim takes up to batch subjects whose digest is due at now and that no
// other tick holds, and leases them until now+lease, in one statement:
// rows another tick is claiming are skipped (SKIP LOCKED), rows another
// tick leased are left alone until the lease runs out (it died). The
// lease saves work; it is not what makes a digest go out once (Record's
// unique key is).
func (s *Store) Claim(ctx context.Context, now time.Time, batch int, lease time.Duration) ([]Claim, error) {
	const q = `
UPDATE digest_preferences AS d
SET claimed_until = $2
FROM (
  SELECT subject
  FROM digest_preferences
  WHERE next_digest_at <= $1
    AND (claimed_until IS NULL OR claimed_until <= $1)
  ORDER BY next_digest_at
  LIMIT $3
  FOR UPDATE SKIP LOCKED
) AS picked
WHERE d.subject = picked.subject
RETURNING d.subject, d.time_zone, coalesce(d.last_week, '')`
	rows, _ := s.db.Primary.Query(ctx, q, now, now.Add(lease), batch)
	claims, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Claim])
	if err != nil {
		return nil, fmt.Errorf("digest: claim: %w", err)
	}
	return claims, nil
}

// Record files the digest of week for subject, computed at now by the
// tick that claimed it: the digests row (with its chart), its event in the
// outbox, and the subject's next due moment, in one transaction under the
// subject's row lock. It does nothing but reschedule when the subject
// turned the digest off meanwhile or that week went out already (another
// tick, whose lease this one outlived, was first): the unique (subject,
// week) of digests backs that up. It reports whether the digest was filed,
// and publishes the event after commit.
func (s *Store) Record(ctx context.Context, now time.Time, d events.DigestWeeklyData, png []byte) (bool, error) {
	var filed bool
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		filed = false
		var p Preferences
		var last *string
		const lock = `
SELECT digest, time_zone, last_week
FROM digest_preferences
WHERE subject = $1
FOR UPDATE`
		err := tx.QueryRow(ctx, lock, d.Subject).Scan(&p.Digest, &p.TimeZone, &last)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && p.Digest != Weekly) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("digest: record: %w", err)
		}
		loc := p.Location()
		send, week, next := Plan(now, loc, deref(last))
		if send && week != d.Week {
			// Made for another week: the zone changed since the claim. Due
			// still, it is made anew by the next tick.
			send, next = false, FirstDue(now, loc, deref(last))
		}
		if send {
			const ins = `
INSERT INTO digests (id, subject, week, chart_png, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (subject, week) DO NOTHING`
			tag, err := tx.Exec(ctx, ins, d.DigestID, d.Subject, d.Week, png, now)
			if err != nil {
				return fmt.Errorf("digest: record: %w", err)
			}
			if filed = tag.RowsAffected() == 1; filed {
				ev, err := events.New(s.topic, events.SourceDigests, d.DigestID, d)
				if err != nil {
					return err
				}
				if err := outbox.Add(ctx, tx, ev); err != nil {
					return err
				}
			}
			last = &d.Week
		}
		const upd = `
UPDATE digest_preferences
SET last_week = $2,
    next_digest_at = $3,
    claimed_until = NULL
WHERE subject = $1`
		if _, err := tx.Exec(ctx, upd, d.Subject, last, next); err != nil {
			return fmt.Errorf("digest: record: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if filed {
		outbox.PublishCommitted(ctx, s.db.Primary, s.pub, d.DigestID.String())
	}
	return filed, nil
}

// Reschedule moves a claimed subject on without a digest (its week is not
// due, or went out), releasing the claim.
func (s *Store) Reschedule(ctx context.Context, c Claim, now time.Time) error {
	_, _, next := Plan(now, (Preferences{TimeZone: c.TimeZone}).Location(), c.LastWeek)
	const q = `
UPDATE digest_preferences
SET next_digest_at = $2,
    claimed_until = NULL
WHERE subject = $1
  AND digest = 'weekly'`
	if _, err := s.db.Primary.Exec(ctx, q, c.Subject, next); err != nil {
		return fmt.Errorf("digest: reschedule: %w", err)
	}
	return nil
}

// PurgeBefore deletes up to batch digests filed before cutoff, their
// charts with them; rows another run holds are skipped.
func (s *Store) PurgeBefore(ctx context.Context, cutoff time.Time, batch int) (int64, error) {
	const q = `
DELETE FROM digests
WHERE id IN (
  SELECT id
  FROM digests
  WHERE created_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`
	tag, err := s.db.Primary.Exec(ctx, q, cutoff, batch)
	if err != nil {
		return 0, fmt.Errorf("digest: purge: %w", err)
	}
	return tag.RowsAffected(), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
