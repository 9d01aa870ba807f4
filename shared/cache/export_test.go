package cache

import (
	"context"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// Seams for tests that replay a race one step at a time.

// Seen is what a miss learnt from Redis before loading.
type Seen = seen

// Observe is what a reader that missed learns before loading.
func (c *Cache) Observe(ctx context.Context) (Seen, error) { return c.observe(ctx) }

// Place is a reader placing t (nil: not found) after observing s.
func (c *Cache) Place(ctx context.Context, id uuid.UUID, s Seen, t *task.Task) {
	if t == nil {
		c.place(ctx, c.entryPrefix+id.String(), s, kindNegative, 0, nil, c.cfg.NegativeTTL)
		return
	}
	c.place(ctx, c.entryPrefix+id.String(), s, kindTask, t.Version, t, c.cfg.TTL)
}

// Late moves a reader's deadline into the past.
func Late(s Seen) Seen {
	s.deadline = 0
	return s
}

// Late moves a writer's deadline into the past.
func (w *Write) Late() { w.seen.deadline = 0 }

// Invalidate starts a new generation.
func (c *Cache) Invalidate(ctx context.Context) error { return c.invalidate(ctx) }

// Pending is the number of failed refreshes no invalidation covers yet.
func (c *Cache) Pending() uint64 { return c.need.Load() }

// DecodeEntry reads a raw entry, generation included.
func DecodeEntry(v string) (task.Task, bool, error) { return decode(v) }
