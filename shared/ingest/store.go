package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
)

// Receipt is the first answer to a command, which every repeat gets.
type Receipt struct {
	Status   int
	Body     []byte // JSON: the task or comment, or the problem
	Location string // of a created task or comment; "" none
	Replayed bool   // read back for a repeat, not made now
}

// key names a command among all: its producer's identity (the subject it
// acts as) with the CloudEvents source and id.
type key struct{ producer, source, id string }

// Errors of the optimistic steps, for Run to retry on.
var (
	// errDuplicate: another delivery of the command recorded its receipt
	// first; this one's transaction rolled back.
	errDuplicate = errors.New("ingest: command already recorded")
	// errRefTaken: a concurrent create took the ref first; this one rolled
	// back and goes on as an update of that task.
	errRefTaken = errors.New("ingest: externalref already taken")
)

// receipt returns the receipt of k, if any, from the primary: a repeat
// right after the first delivery must find it.
func receipt(ctx context.Context, pool queryer, k key) (Receipt, bool, error) {
	const q = `
SELECT status, body, location
FROM command_receipts
WHERE producer = $1
  AND source = $2
  AND id = $3`
	var r Receipt
	err := pool.QueryRow(ctx, q, k.producer, k.source, k.id).Scan(&r.Status, &r.Body, &r.Location)
	if errors.Is(err, pgx.ErrNoRows) {
		return Receipt{}, false, nil
	}
	if err != nil {
		return Receipt{}, false, fmt.Errorf("ingest: receipt: %w", err)
	}
	r.Replayed = true
	return r, true, nil
}

type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// record inserts r as the receipt of k in tx, the effect's transaction;
// errDuplicate when another delivery's is there (or is being written:
// the insert waits for that transaction, and finds its row if it commits).
func record(ctx context.Context, tx pgx.Tx, k key, r Receipt) error {
	const q = `
INSERT INTO command_receipts (producer, source, id, status, body, location)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING`
	tag, err := tx.Exec(ctx, q, k.producer, k.source, k.id, r.Status, r.Body, r.Location)
	if err != nil {
		return fmt.Errorf("ingest: record receipt: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errDuplicate
	}
	return nil
}

// lookupRef returns the task producer's ref names, if any, from the primary.
func lookupRef(ctx context.Context, db *pg.DB, producer, ref string) (uuid.UUID, bool, error) {
	const q = `
SELECT task_id
FROM command_refs
WHERE producer = $1
  AND ref = $2`
	var id uuid.UUID
	err := db.Primary.QueryRow(ctx, q, producer, ref).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, false, nil
	}
	if err != nil {
		return uuid.Nil, false, fmt.Errorf("ingest: externalref: %w", err)
	}
	return id, true, nil
}

// addRef makes ref name taskID for producer, in the create's transaction;
// errRefTaken when a concurrent create made it first.
func addRef(ctx context.Context, tx pgx.Tx, producer, ref string, taskID uuid.UUID) error {
	const q = `
INSERT INTO command_refs (producer, ref, task_id)
VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`
	tag, err := tx.Exec(ctx, q, producer, ref, taskID)
	if err != nil {
		return fmt.Errorf("ingest: add externalref: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return errRefTaken
	}
	return nil
}

// dropRef forgets ref when it still names taskID, a task that is gone
// (trashed): the next create command makes a new one.
func dropRef(ctx context.Context, db *pg.DB, producer, ref string, taskID uuid.UUID) error {
	const q = `
DELETE FROM command_refs
WHERE producer = $1
  AND ref = $2
  AND task_id = $3`
	if _, err := db.Primary.Exec(ctx, q, producer, ref, taskID); err != nil {
		return fmt.Errorf("ingest: drop externalref: %w", err)
	}
	return nil
}

// reject records r, a refusal, as the receipt of k together with ev, the
// command's rejected event, in one transaction: a redelivery finds the
// receipt and sends no second event. It returns the receipt in force:
// r, or an earlier delivery's.
func reject(ctx context.Context, db *pg.DB, k key, r Receipt, ev events.Event) (Receipt, error) {
	err := pg.InTx(ctx, db.Primary, func(tx pgx.Tx) error {
		if err := record(ctx, tx, k, r); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, ev)
	})
	if errors.Is(err, errDuplicate) {
		first, ok, err := receipt(ctx, db.Primary, k)
		if err != nil || !ok {
			return Receipt{}, errors.Join(errors.New("ingest: a receipt vanished"), err)
		}
		return first, nil
	}
	return r, err
}

// PurgeReceipts deletes up to batch receipts older than cutoff, which must
// lie beyond the redelivery window (cleanup uses the processed events'
// PROCESSED_EVENT_RETENTION_DAYS): a command delivered again after its
// receipt is gone would take effect again.
func PurgeReceipts(ctx context.Context, db *pg.DB, cutoff time.Time, batch int) (int64, error) {
	if batch < 1 {
		return 0, fmt.Errorf("ingest: purge receipts: batch %d must be positive", batch)
	}
	const q = `
DELETE FROM command_receipts
WHERE (producer, source, id) IN (
  SELECT producer, source, id
  FROM command_receipts
  WHERE created_at < $1
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)`
	tag, err := db.Primary.Exec(ctx, q, cutoff, batch)
	if err != nil {
		return 0, fmt.Errorf("ingest: purge receipts: %w", err)
	}
	return tag.RowsAffected(), nil
}
