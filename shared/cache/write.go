package cache

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/shared/task"
)

// Write is one change's claim on the cache. Take it with BeginWrite before
// the transaction, then report the committed result with Stored or
// Deleted; a write that did not commit reports nothing.
//
// The claim carries the generation and server time seen before the
// database was touched: a refresh that arrives after an invalidation or
// after its deadline cannot prove it is the newest, and leaves a poison
// that sends readers of that task to the primary instead. The zero Write
// (disabled cache) does nothing.
type Write struct {
	c    *Cache
	seen seen
	ok   bool // the begin call answered
}

// BeginWrite notes the cache generation before a write. If Redis does not
// answer, the write goes ahead and its refresh counts as failed.
func (c *Cache) BeginWrite(ctx context.Context) Write {
	if c.rdb == nil {
		return Write{}
	}
	s, err := c.observe(ctx)
	if err != nil {
		c.log.Debug().Err(err).Msg("cache begin failed")
		return Write{c: c}
	}
	return Write{c: c, seen: s, ok: true}
}

// Stored refreshes the entry of a created or updated task after commit.
// It never fails the request: a refresh that does not land makes this
// process invalidate the cache as soon as Redis allows, and read from the
// primary until then.
func (w Write) Stored(ctx context.Context, t task.Task) {
	if w.c == nil {
		return
	}
	e := NewEntry(&t)
	w.refresh(ctx, t.ID, kindTask, t.Version, &e, w.c.ttl())
}

// Trashed replaces the entry of a task moved to the trash at version with
// one that reads as not found. Unlike a purge's tombstone it is ranked by
// version like a task, so a restore (a higher version) replaces it, and a
// writer that cannot prove it is the newest poisons instead (setScript).
func (w Write) Trashed(ctx context.Context, id uuid.UUID, version int64) {
	if w.c == nil {
		return
	}
	w.refresh(ctx, id, kindTrashed, version, nil, w.c.ttl())
}

// Deleted replaces a purged task's entry with a tombstone, which reads as
// not found and outranks every version a racing reader or writer holds.
func (w Write) Deleted(ctx context.Context, id uuid.UUID) {
	if w.c == nil {
		return
	}
	w.refresh(ctx, id, kindTombstone, tombstoneVersion, nil, w.c.cfg.TombstoneTTL)
}

var errNoBegin = errors.New("cache: generation unknown: BeginWrite got no answer")

func (w Write) refresh(ctx context.Context, id uuid.UUID, kind byte, version int64, e *Entry, ttl time.Duration) {
	c := w.c
	if !w.ok {
		c.lost(errNoBegin)
		return
	}
	v := encode(kind, version, e)
	var n int64
	err := c.call(ctx, opRefresh, func(ctx context.Context) error {
		var err error
		n, err = setScript.Run(ctx, c.rdb, []string{c.entryPrefix + id.String(), c.genKey, c.windowKey},
			w.seen.gen, w.seen.deadline, version, v, ttl.Milliseconds(), 1, newGeneration()).Int64()
		return err
	})
	switch {
	case err != nil:
		c.lost(err)
	case n == setFailed:
		c.lost(errors.New("cache: refresh refused by Redis (out of memory?)"))
	case n == setPoisoned:
		c.log.Debug().Str("task.id", id.String()).Msg("refresh raced an invalidation or passed its deadline; entry poisoned")
	}
}

// StoredMany is Stored for several tasks of one write (a bulk change), in
// one round trip to Redis: a call each was a tenth of a bulk change's time.
func (w Write) StoredMany(ctx context.Context, ts []task.Task) {
	if w.c == nil || len(ts) == 0 {
		return
	}
	c := w.c
	if !w.ok {
		c.lost(errNoBegin)
		return
	}
	cmds := make([]*redis.Cmd, len(ts))
	run := func(ctx context.Context, eval bool) error {
		pipe := c.rdb.Pipeline()
		for i := range ts {
			e := NewEntry(&ts[i])
			keys := []string{c.entryPrefix + ts[i].ID.String(), c.genKey, c.windowKey}
			args := []any{w.seen.gen, w.seen.deadline, ts[i].Version, encode(kindTask, ts[i].Version, &e), c.ttl().Milliseconds(), 1, newGeneration()}
			if eval {
				cmds[i] = setScript.Eval(ctx, pipe, keys, args...)
			} else {
				cmds[i] = setScript.EvalSha(ctx, pipe, keys, args...)
			}
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := c.call(ctx, opRefresh, func(ctx context.Context) error {
		err := run(ctx, false)
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// A Redis that has not seen the script yet (restarted, flushed).
			err = run(ctx, true)
		}
		return err
	})
	if err != nil {
		c.lost(err)
		return
	}
	for i, cmd := range cmds {
		switch n, err := cmd.Int64(); {
		case err != nil:
			c.lost(err)
		case n == setFailed:
			c.lost(errors.New("cache: refresh refused by Redis (out of memory?)"))
		case n == setPoisoned:
			c.log.Debug().Str("task.id", ts[i].ID.String()).Msg("refresh raced an invalidation or passed its deadline; entry poisoned")
		}
	}
}

// FieldsChanged drops every cached task at once (a new generation): a
// custom field definition was renamed or deleted, which changes how the
// tasks of its project read, and the cache holds tasks as they read
// (their values by field name). Definitions change rarely, so one
// invalidation costs a refill, never a stale name. The definitions'
// writers call it after their commit, before they answer. If Redis does
// not take it, this process reads the primary and retries until it does,
// as after a lost refresh; the error says so.
func (c *Cache) FieldsChanged(ctx context.Context) error {
	if c.rdb == nil {
		return nil
	}
	err := c.invalidate(ctx)
	if err != nil {
		c.lost(err)
	}
	return err
}
