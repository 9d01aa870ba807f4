package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/taskfn/taskfn/shared/events"
)

// RelayResult is what one Relay run did.
type RelayResult struct {
	Keys      int   `json:"keys"`      // keys it worked on
	Published int   `json:"published"` // events it published
	Failed    int   `json:"failed"`    // keys whose publish failed
	Pending   int64 `json:"pending"`   // events still unpublished after the run
}

// maxRelayWorkers bounds the keys Relay publishes at once. Each holds a
// connection of the pool for its transaction.
const maxRelayWorkers = 16

// Relay publishes what writers left unpublished: every key with
// unpublished events, the key with the oldest first, at most batch events
// in all. Keys are published concurrently, each in order under its lock,
// so the relay and writers never reorder a key's events.
//
// The error joins the keys' failures; it wraps events.ErrUnavailable when
// Kafka could not be reached, after which the keys not yet started are
// left for the next run.
func Relay(ctx context.Context, pool *pgxpool.Pool, pub Publisher, batch int) (RelayResult, error) {
	if batch < 1 {
		return RelayResult{}, fmt.Errorf("outbox: relay: batch %d must be positive", batch)
	}
	jobs, err := relayJobs(ctx, pool, batch)
	if err != nil {
		return RelayResult{}, err
	}
	var (
		res         = RelayResult{Keys: len(jobs)}
		published   atomic.Int64
		mu          sync.Mutex
		errs        []error
		unavailable atomic.Bool
		g           errgroup.Group
	)
	g.SetLimit(min(maxRelayWorkers, max(1, int(pool.Config().MaxConns)-1)))
	for _, j := range jobs {
		if unavailable.Load() || ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if unavailable.Load() {
				return nil
			}
			n, err := publishKey(ctx, pool, pub, j.key, j.limit)
			published.Add(int64(n))
			if err != nil {
				if errors.Is(err, events.ErrUnavailable) {
					unavailable.Store(true)
				}
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	res.Published = int(published.Load())
	res.Failed = len(errs)
	if res.Pending, err = Pending(ctx, pool); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

type relayJob struct {
	key   string
	limit int
}

// relayJobs picks the keys with unpublished events, oldest first, and
// shares batch among them in that order.
func relayJobs(ctx context.Context, pool *pgxpool.Pool, batch int) ([]relayJob, error) {
	const q = `
SELECT key, count(*)
FROM outbox
WHERE published_at IS NULL
GROUP BY key
ORDER BY min(id)
LIMIT $1`
	rows, _ := pool.Query(ctx, q, batch)
	var (
		jobs []relayJob
		key  string
		n    int
		left = batch
	)
	_, err := pgx.ForEachRow(rows, []any{&key, &n}, func() error {
		if left > 0 {
			jobs = append(jobs, relayJob{key: key, limit: min(n, left)})
			left -= min(n, left)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox: relay: pending keys: %w", err)
	}
	return jobs, nil
}
