package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/events"
)

// publishWait bounds the after-commit publish: waiting for a key's lock
// held by the relay, and the reads and marks around the send (whose own
// retries the publisher bounds).
const publishWait = 5 * time.Second

// PublishCommitted is what a writer calls right after its transaction
// committed events for key: publish them now, best effort. The write stands
// whatever happens here, so nothing is returned: a failure is logged and
// the events wait for relay-outbox. A nil pub does nothing (no Kafka
// configured). The caller hanging up does not stop the publish.
func PublishCommitted(ctx context.Context, pool *pgxpool.Pool, pub Publisher, key string) {
	if pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
	defer cancel()
	if _, err := PublishKey(ctx, pool, pub, key); err != nil {
		leftToRelay(ctx, err, key)
	}
}

// leftToRelay logs a failed publish after commit: its events wait.
func leftToRelay(ctx context.Context, err error, key string) {
	level := zerolog.WarnLevel
	if isCoolingDown(err) {
		level = zerolog.DebugLevel // Kafka known down: one warning per cooldown is enough
	}
	zerolog.Ctx(ctx).WithLevel(level).Err(err).Str("event.key", key).Msg("events left to the relay")
}

// PublishFirst is PublishCommitted for events that are the first of their
// key waiting, just committed: those of a new key (a task created), or of
// a write that found none of its key waiting (QueueWaiting) while holding
// what orders the key's writers. They go out in order from memory, with
// no lock and no read, and the sent ones are marked in one round trip
// instead of three. A later writer of the key who finds them still unmarked
// sends them again before its own, and the relay may send them again too:
// duplicates, which at least once allows and sinks drop by event id; the
// first delivery of each keeps the key's order.
func PublishFirst(ctx context.Context, pool *pgxpool.Pool, pub Publisher, evs []events.Event) {
	if pub == nil || len(evs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
	defer cancel()
	b := &pgx.Batch{}
	sent := make([]string, 0, len(evs))
	var err error
	for _, ev := range evs {
		// As the row holds it: a re-send by the relay is the same event.
		ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
		if err = pub.Publish(ctx, ev); err != nil {
			queueFailure(b, ev.ID, err)
			break
		}
		sent = append(sent, ev.ID.String())
	}
	if len(sent) > 0 {
		// One implicit transaction: the mark need not wait for its WAL
		// flush (see publishChunk).
		b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
		queueMark(b, sent)
	}
	if b.Len() > 0 {
		if merr := pool.SendBatch(ctx, b).Close(); merr != nil {
			err = errors.Join(err, fmt.Errorf("outbox: mark: %w", merr))
		}
	}
	if err != nil {
		leftToRelay(ctx, err, evs[0].Key)
	}
}

// QueueWaiting queues on b, the tail of a write's transaction, before the
// write's own events, a read of whether events of key are waiting to be
// published; waiting is set when b's results are read. Only a writer that
// holds, from before the read until it commits, what every writer of key
// holds too (for a task, a lock on its row: a write, FOR UPDATE, or the
// FOR KEY SHARE of a history line's foreign key) may then use
// PublishFirst when none are: no event of key can commit between the read
// and its own.
func QueueWaiting(b *pgx.Batch, key string, waiting *bool) {
	const q = `SELECT EXISTS (SELECT 1 FROM outbox WHERE key = $1 AND published_at IS NULL)`
	b.Queue(q, key).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(waiting); err != nil {
			return fmt.Errorf("outbox: waiting %q: %w", key, err)
		}
		return nil
	})
}
