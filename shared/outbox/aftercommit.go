package outbox

import (
	"context"
	"errors"
	"time"

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
		level := zerolog.WarnLevel
		if errors.Is(err, events.ErrCoolingDown) {
			level = zerolog.DebugLevel // Kafka known down: one warning per cooldown is enough
		}
		zerolog.Ctx(ctx).WithLevel(level).Err(err).Str("event.key", key).Msg("events left to the relay")
	}
}
