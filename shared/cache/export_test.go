package cache

import (
	"context"
	"encoding/json"
	"fmt"

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
	e := NewEntry(t)
	c.place(ctx, c.entryPrefix+id.String(), s, kindTask, t.Version, &e, c.cfg.TTL)
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
func DecodeEntry(v string) (Entry, bool, error) { return decode(v) }

// GetTask is Get with the entry's JSON decoded, for tests that compare
// tasks.
func GetTask(ctx context.Context, c *Cache, id uuid.UUID) (task.Task, error) {
	e, err := c.Get(ctx, id)
	if err != nil {
		return task.Task{}, err
	}
	var t task.Task
	if err := json.Unmarshal(e.JSON, &t); err != nil {
		return task.Task{}, err
	}
	if t.Version != e.Version || t.Project != e.Project || (t.AssigneeID == nil) != (e.AssigneeID == nil) ||
		(t.AssigneeID != nil && *t.AssigneeID != *e.AssigneeID) {
		return task.Task{}, fmt.Errorf("entry fields %+v disagree with its JSON %s", e, e.JSON)
	}
	return t, nil
}
