package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/task"
)

// acked is what has been acknowledged for one task: a read that starts
// later must not return less.
type acked struct {
	version atomic.Int64
	deleted atomic.Bool
}

func (a *acked) raise(v int64) {
	for {
		cur := a.version.Load()
		if v <= cur || a.version.CompareAndSwap(cur, v) {
			return
		}
	}
}

// TestConcurrentReadersWriters interleaves readers and writers on a few
// tasks thousands of times against the real PostgreSQL and Redis. Every
// read is checked against what was acknowledged before it began, and at
// the end every cache entry against the database.
//
// Entries live ~150ms, so readers miss constantly, and the replica loader
// returns what it read only after a random pause (mostly under 2ms,
// sometimes 20ms): the value a reader places is as old as one from a
// lagging replica or a descheduled reader, which is the race the set
// script must win.
func TestConcurrentReadersWriters(t *testing.T) {
	t.Parallel()
	cfg := cachetest.Config(t, "")
	cfg.TTL, cfg.TTLJitter = 150*time.Millisecond, 0.2
	cfg.NegativeTTL = 50 * time.Millisecond
	cfg.TombstoneTTL = 300 * time.Millisecond
	// Writes slower than the set deadline (60ms here) invalidate; keep the
	// primary window after them short so most misses use the replica.
	cfg.PrimaryWindow = 20 * time.Millisecond
	w := newWorld(t, cfg, func(next cache.Loader) cache.Loader {
		return func(ctx context.Context, id uuid.UUID) (task.Task, error) {
			tk, err := next(ctx, id)
			pause := time.Duration(rand.IntN(2000)) * time.Microsecond
			if rand.IntN(50) == 0 {
				pause = 20 * time.Millisecond
			}
			time.Sleep(pause)
			return tk, err
		}
	})

	const (
		slots      = 4   // tasks alive at any time
		writers    = 6   // per-writer ops below
		writes     = 400 // updates per writer; about one in ten also deletes and replaces
		readers    = 12
		deleteRate = 10
	)
	var (
		mu     sync.Mutex
		live   [slots]uuid.UUID
		all    []uuid.UUID
		acks   = map[uuid.UUID]*acked{}
		titles sync.Map // "id/version" → title committed at that version
	)
	register := func(tk task.Task) {
		a := &acked{}
		a.raise(tk.Version)
		mu.Lock()
		defer mu.Unlock()
		acks[tk.ID] = a
		all = append(all, tk.ID)
	}
	// pick favours live tasks; deleted ones pile up in all.
	pick := func() (uuid.UUID, *acked) {
		mu.Lock()
		defer mu.Unlock()
		id := all[rand.IntN(len(all))]
		if rand.IntN(4) != 0 {
			id = live[rand.IntN(slots)]
		}
		return id, acks[id]
	}
	record := func(tk task.Task) { titles.Store(fmt.Sprintf("%s/%d", tk.ID, tk.Version), tk.Title) }
	for i := range live {
		tk := w.create(fmt.Sprintf("slot %d", i))
		record(tk)
		register(tk)
		live[i] = tk.ID
	}

	// check validates one read that began when a held the acknowledged state.
	var violations atomic.Int64
	check := func(who string, id uuid.UUID, minVersion int64, wasDeleted bool, got task.Task, err error) {
		fail := func(format string, args ...any) {
			if violations.Add(1) <= 10 {
				t.Errorf("%s read of %s: "+format, append([]any{who, id}, args...)...)
			}
		}
		switch {
		case err != nil && !errors.Is(err, task.ErrNotFound):
			fail("%v", err)
		case wasDeleted && err == nil:
			fail("version %d of a task whose delete was acknowledged", got.Version)
		case err == nil && got.Version < minVersion:
			fail("version %d after version %d was acknowledged", got.Version, minVersion)
		case err == nil:
			if title, ok := titles.Load(fmt.Sprintf("%s/%d", id, got.Version)); ok && title != got.Title {
				fail("version %d has title %q, committed %q", got.Version, got.Title, title)
			}
		case !wasDeleted:
			// Not found is right only if a delete has committed since.
			if _, err := w.store.GetPrimary(bg, id); !errors.Is(err, task.ErrNotFound) {
				fail("not found, but the task exists (%v)", err)
			}
		}
	}

	var (
		wg        sync.WaitGroup
		done      atomic.Bool
		reads     atomic.Int64
		deletions atomic.Int64
	)
	for range readers {
		wg.Go(func() {
			for !done.Load() {
				id, a := pick()
				minVersion, wasDeleted := a.version.Load(), a.deleted.Load()
				got, err := cache.GetTask(bg, w.c, id)
				check("reader", id, minVersion, wasDeleted, got, err)
				reads.Add(1)
			}
		})
	}
	var writersWG sync.WaitGroup
	for wi := range writers {
		writersWG.Go(func() {
			for n := range writes {
				slot := rand.IntN(slots)
				mu.Lock()
				id, a := live[slot], acks[live[slot]]
				mu.Unlock()

				cw := w.c.BeginWrite(bg)
				up, err := w.store.Update(bg, "", id, func(cur task.Task) (task.Task, error) {
					cur.Title = fmt.Sprintf("w%d n%d", wi, n)
					return cur, nil
				})
				if errors.Is(err, task.ErrNotFound) {
					continue // another writer deleted it
				}
				if err != nil {
					t.Error(err)
					return
				}
				record(up)
				cw.Stored(bg, up)
				a.raise(up.Version)
				wasDeleted := a.deleted.Load()
				got, err := cache.GetTask(bg, w.c, id)
				check("writer's own", id, up.Version, wasDeleted, got, err)

				if rand.IntN(deleteRate) != 0 {
					continue
				}
				cw = w.c.BeginWrite(bg)
				if _, err := w.store.Trash(bg, "", id, nil); errors.Is(err, task.ErrNotFound) {
					continue
				} else if err != nil {
					t.Error(err)
					return
				}
				if err := w.store.Purge(bg, "", id, func(task.Trashed) error { return nil }); err != nil {
					t.Error(err)
					return
				}
				cw.Deleted(bg, id)
				a.deleted.Store(true)
				deletions.Add(1)
				got, err = cache.GetTask(bg, w.c, id)
				check("deleter's own", id, 0, true, got, err)

				cw = w.c.BeginWrite(bg)
				tk, err := w.store.Create(bg, "", task.Task{Title: "replacement", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
				if err != nil {
					t.Error(err)
					return
				}
				record(tk)
				cw.Stored(bg, tk)
				register(tk)
				mu.Lock()
				live[slot] = tk.ID
				mu.Unlock()
			}
		})
	}
	writersWG.Wait()
	done.Store(true)
	wg.Wait()

	// Every entry still valid must match the database.
	stale := 0
	for _, id := range all {
		raw, valid := w.entry(id)
		if !valid {
			continue
		}
		cached, found, err := cache.DecodeEntry(raw)
		if err != nil {
			t.Fatalf("entry of %s: %v", id, err)
		}
		row, err := w.store.GetPrimary(bg, id)
		switch {
		case errors.Is(err, task.ErrNotFound):
			if found {
				stale++
				t.Errorf("%s: cached version %d of a deleted task", id, cached.Version)
			}
		case err != nil:
			t.Fatal(err)
		case !found:
			stale++
			t.Errorf("%s: cached as not found, database has version %d (%s)", id, row.Version, strings.Fields(raw)[1])
		default:
			if d := cmp.Diff(cache.NewEntry(&row), cached); d != "" {
				stale++
				t.Errorf("%s: cache differs from the database (-db +cache):\n%s", id, d)
			}
		}
	}
	r := w.results()
	t.Logf("%d reads (%v), %d writes incl. %d deletes, %d replica and %d primary loads, %d invalidations, %d tasks, %d stale entries",
		reads.Load(), r, writers*writes, deletions.Load(), w.replica.Load(), w.primary.Load(),
		int(w.gauge("taskfn_cache_invalidations_total")), len(all), stale)
	// The test is only worth something if the races happened.
	if r["miss"] < 500 || r["hit"] < 1000 || deletions.Load() < 50 {
		t.Errorf("too little contention to mean anything: %v, %d deletes", r, deletions.Load())
	}
	if w.c.Pending() != 0 {
		t.Errorf("%d refreshes failed against a healthy Redis", w.c.Pending())
	}
}
