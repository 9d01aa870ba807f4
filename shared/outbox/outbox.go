// Package outbox is the transactional outbox: writers add their events to
// the outbox table in the transaction that makes the change, and they are
// published to Kafka after commit — at once by the writer (PublishKey) and,
// for whatever that missed, by relay-outbox (Relay). It is the one place
// with SQL for the outbox table.
//
// Delivery is at least once: an event is marked published only after Kafka
// acknowledged it, so a crash in between sends it again, with the same id.
// Order is kept per key: every publisher of a key holds that key's
// advisory lock and sends its rows one at a time in id order, stopping at
// the first failure. The exception is a write whose events are the first
// of their key waiting (PublishFirst): nothing can precede them, so they
// go out from memory without the lock; a re-send of them can then come
// after a later event of the key, but their first delivery cannot.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
)

// Publisher sends one event and returns once Kafka has it durably;
// *kafka.Publisher is the real one.
type Publisher interface {
	Publish(ctx context.Context, ev events.Event) error
}

// lockSpace is the first key of every outbox advisory lock, so a key's
// lock cannot collide with advisory locks taken for other purposes.
const lockSpace = 0x6f757462 // "outb"

// keyChunk bounds the rows one transaction publishes, so a key with a
// long backlog does not keep a transaction (and its lock) open for long.
const keyChunk = 100

// Add inserts ev into the outbox inside tx, the transaction of the change
// it describes: the event then exists exactly when the change committed.
func Add(ctx context.Context, tx pgx.Tx, ev events.Event) error {
	if err := complete(ev); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, addSQL, addArgs(ev)...); err != nil {
		return fmt.Errorf("outbox: add %s: %w", ev.Type, err)
	}
	return nil
}

// Queue is Add for evs, queued on b, the tail of the change's transaction
// (pg.InTxBatched): their rows go with the write's last round trip, in
// one statement (an update of a status is two events), in order.
func Queue(b *pgx.Batch, evs ...events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	args := make([]any, 0, 8*len(evs))
	for _, ev := range evs {
		if err := complete(ev); err != nil {
			return err
		}
		args = append(args, addArgs(ev)...)
	}
	sql := addSQL
	if len(evs) > 1 {
		sql = addManySQL(len(evs))
	}
	b.Queue(sql, args...)
	return nil
}

const addSQL = `
INSERT INTO outbox (event_id, topic, key, type, source, subject, data, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

// addManySQL is addSQL for n rows. A multi-row VALUES assigns the ids in
// its order, as consecutive statements would.
func addManySQL(n int) string {
	var b strings.Builder
	b.WriteString(addSQL)
	for i := 1; i < n; i++ {
		b.WriteString(", (")
		for c := range 8 {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(i*8+c+1))
		}
		b.WriteString(")")
	}
	return b.String()
}

func addArgs(ev events.Event) []any {
	return []any{ev.ID, ev.Topic, ev.Key, ev.Type, ev.Source, ev.Subject, ev.Data, ev.Time}
}

func complete(ev events.Event) error {
	if ev.ID == uuid.Nil || ev.Topic == "" || ev.Key == "" || ev.Type == "" || ev.Source == "" || len(ev.Data) == 0 || ev.Time.IsZero() {
		return fmt.Errorf("outbox: add: incomplete event %s %q", ev.ID, ev.Type)
	}
	return nil
}

// AddMany is Add for several events, in one statement: a bulk change
// writes hundreds, and a statement each was most of its database time.
func AddMany(ctx context.Context, tx pgx.Tx, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	// ids as text: a []uuid.UUID has no text form, which the exec mode
	// behind PgBouncer needs.
	ids, at := make([]string, n), make([]time.Time, n)
	topics, keys, types, sources, subjects, data := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, ev := range evs {
		if err := complete(ev); err != nil {
			return err
		}
		ids[i], topics[i], keys[i], types[i], sources[i], subjects[i], data[i], at[i] = ev.ID.String(), ev.Topic, ev.Key, ev.Type, ev.Source, ev.Subject, string(ev.Data), ev.Time
	}
	// WITH ORDINALITY keeps the given order in the ids bigserial hands
	// out: per key, publication order is the order of the changes.
	const q = `
INSERT INTO outbox (event_id, topic, key, type, source, subject, data, created_at)
SELECT e, t, k, ty, s, su, d::jsonb, c
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[])
    WITH ORDINALITY AS x(e, t, k, ty, s, su, d, c, n)
ORDER BY n`
	if _, err := tx.Exec(ctx, q, ids, topics, keys, types, sources, subjects, data, at); err != nil {
		return fmt.Errorf("outbox: add %d events: %w", n, err)
	}
	return nil
}

// PublishKey publishes key's unpublished events in order and marks them
// published; it returns how many it published. Called after a writer's
// commit, and by Relay. A failed publish leaves that event and the later
// ones of the key unpublished (counting the attempt and its error) and is
// returned; events of other keys are not affected.
func PublishKey(ctx context.Context, pool *pgxpool.Pool, pub Publisher, key string) (int, error) {
	return publishKey(ctx, pool, pub, key, -1)
}

// publishKey is PublishKey publishing at most limit events (-1: no limit).
func publishKey(ctx context.Context, pool *pgxpool.Pool, pub Publisher, key string, limit int) (int, error) {
	total := 0
	for limit != 0 {
		n := keyChunk
		if limit > 0 {
			n = min(n, limit)
			limit -= n
		}
		published, full, err := publishChunk(ctx, pool, pub, key, n)
		total += published
		if err != nil || !full {
			return total, err
		}
	}
	return total, nil
}

// row is an outbox row as publishing reads it.
type row struct {
	ID        int64     `db:"id"`
	EventID   uuid.UUID `db:"event_id"`
	Topic     string    `db:"topic"`
	Key       string    `db:"key"`
	Type      string    `db:"type"`
	Source    string    `db:"source"`
	Subject   string    `db:"subject"`
	Data      []byte    `db:"data"`
	CreatedAt time.Time `db:"created_at"`
}

func (r row) event() events.Event {
	return events.Event{
		ID: r.EventID, Topic: r.Topic, Key: r.Key, Type: r.Type, Source: r.Source,
		Subject: r.Subject, Time: r.CreatedAt.UTC(), Data: r.Data,
	}
}

// publishChunk publishes up to limit of key's oldest unpublished events in
// one transaction holding key's lock; full reports that it found limit
// rows, so more may be waiting.
//
// The lock is a transaction-level advisory lock: it orders a writer's
// publish after a relay's (or another writer's) for the same key, and it
// is released by commit or rollback whatever happens, also behind
// PgBouncer in transaction pooling mode. Hash collisions of two keys only
// serialise them.
func publishChunk(ctx context.Context, pool *pgxpool.Pool, pub Publisher, key string, limit int) (published int, full bool, err error) {
	var (
		pubErr  error
		pending []row
	)
	// The lock and the read go with BEGIN (the read waits for the lock
	// in the server), and the marks with the commit check: three round
	// trips, not six.
	first := &pgx.Batch{}
	// The published mark need not wait for its WAL flush: lost in a
	// crash, it only makes the events go out again, which at least once
	// allows; and a publish no longer waits for a disk flush.
	first.Queue(`SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock($1, hashtext($2))`, lockSpace, key)
	const q = `
SELECT id, event_id, topic, key, type, source, subject, data, created_at
FROM outbox
WHERE key = $1
  AND published_at IS NULL
ORDER BY id
LIMIT $2`
	first.Queue(q, key, limit).Query(func(rows pgx.Rows) error {
		var err error
		if pending, err = pgx.CollectRows(rows, pgx.RowToStructByName[row]); err != nil {
			return fmt.Errorf("outbox: read %q: %w", key, err)
		}
		return nil
	})
	err = pg.InTxBatched(ctx, pool, first, func(tx pgx.Tx, tail *pgx.Batch) error {
		full = len(pending) == limit
		done := make([]string, 0, len(pending))
		for _, r := range pending {
			// One at a time: a later event must not reach Kafka while an
			// earlier one of its key may still fail.
			if pubErr = pub.Publish(ctx, r.event()); pubErr != nil {
				queueFailure(tail, r.EventID, pubErr)
				break
			}
			done = append(done, r.EventID.String())
		}
		queueMark(tail, done)
		published = len(done)
		return nil
	})
	if err != nil {
		// Not committed: what was sent will be sent again, as duplicates.
		return 0, false, fmt.Errorf("outbox: publish %q: %w", key, err)
	}
	if pubErr != nil {
		return published, false, fmt.Errorf("outbox: publish %q: %w", key, pubErr)
	}
	return published, full, nil
}

// queueMark marks the events sent (ids as text: a []uuid.UUID has no
// text form, which the exec mode behind PgBouncer needs), on b: both
// publish paths, the locked one and PublishFirst.
func queueMark(b *pgx.Batch, sent []string) {
	if len(sent) == 0 {
		return
	}
	const q = `
UPDATE outbox
SET published_at = now(),
    attempts = attempts + 1,
    last_error = NULL
WHERE event_id = ANY($1::uuid[])
  AND published_at IS NULL`
	b.Queue(q, sent)
}

// queueFailure counts a failed attempt on event id, on b. A publish
// refused during the cooldown was not attempted and leaves the row's last
// real error in place.
func queueFailure(b *pgx.Batch, id uuid.UUID, cause error) {
	if isCoolingDown(cause) {
		return
	}
	const q = `
UPDATE outbox
SET attempts = attempts + 1,
    last_error = left($2, 1000)
WHERE event_id = $1::uuid
  AND published_at IS NULL`
	b.Queue(q, id.String(), cause.Error())
}

func isCoolingDown(err error) bool { return errors.Is(err, events.ErrCoolingDown) }

// Pending counts the unpublished events.
func Pending(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	const q = `
SELECT count(*)
FROM outbox
WHERE published_at IS NULL`
	var n int64
	if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: pending: %w", err)
	}
	return n, nil
}

// PurgePublished deletes events published before olderThan, in
// transactions of at most batch rows, and returns how many it deleted.
// Concurrent runs skip each other's rows instead of waiting for them.
func PurgePublished(ctx context.Context, pool *pgxpool.Pool, olderThan time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("outbox: purge: batch %d must be positive", batch)
	}
	const q = `
DELETE FROM outbox
WHERE id IN (
    SELECT id
    FROM outbox
    WHERE published_at < $1
    ORDER BY published_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED)`
	var total int64
	for {
		tag, err := pool.Exec(ctx, q, olderThan, batch)
		if err != nil {
			return total, fmt.Errorf("outbox: purge: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(batch) {
			return total, nil
		}
	}
}
