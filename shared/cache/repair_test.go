package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/task"
)

// lagging wraps a replica loader so that it answers an older copy of the
// tasks it was given, as a replica behind the primary does.
type lagging struct {
	mu  sync.Mutex
	old map[uuid.UUID]task.Task
}

func (l *lagging) behind(t task.Task) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.old == nil {
		l.old = map[uuid.UUID]task.Task{}
	}
	l.old[t.ID] = t
}

func (l *lagging) wrap(replica cache.Loader) cache.Loader {
	return func(ctx context.Context, id uuid.UUID) (task.Task, error) {
		l.mu.Lock()
		t, ok := l.old[id]
		l.mu.Unlock()
		if ok {
			return t, nil
		}
		return replica(ctx, id)
	}
}

// TestPrimaryWindow: after an invalidation, misses read the primary for
// CACHE_PRIMARY_WINDOW, in every process, so a lagging replica cannot
// refill the cache with the versions the invalidation was made to drop.
// a writes and loses its refresh, as a write during a Redis failure does,
// then invalidates as its repair would; b reads through a replica still at
// the version before the write.
func TestPrimaryWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		window time.Duration
		want   int64 // the version b reads after the invalidation
		pool   string
	}{
		{"window open: the primary", time.Minute, 2, "primary"},
		// Without a window the lagging replica refills the cache with the
		// version the write replaced: what the window is for.
		{"no window: the lagging replica", 0, 1, "replica"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := cachetest.Config(t, "")
			cfg.PrimaryWindow = tc.window
			// Nothing fails here on purpose: a Redis call timing out on a
			// busy machine would read the primary and blur what is counted.
			cfg.Timeout = 5 * time.Second
			lag := &lagging{}
			a := newWorld(t, cfg, nil)
			b := newWorldOn(t, cfg, a.store, lag.wrap)

			v1 := a.create("v1")
			b.eventuallyHit(v1.ID, 1)
			lag.behind(v1)
			if _, err := a.store.Update(bg, "", v1.ID, func(cur task.Task) (task.Task, error) {
				cur.Title = "v2"
				return cur, nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := a.c.Invalidate(bg); err != nil {
				t.Fatal(err)
			}
			ttl := a.rdb.PTTL(bg, a.windowKey()).Val()
			if tc.window > 0 && (ttl <= 0 || ttl > tc.window) {
				t.Errorf("primary window TTL %s, want up to %s", ttl, tc.window)
			}

			before := metricsByPool(b)
			b.get(v1.ID, tc.want)
			after := metricsByPool(b)
			if after[tc.pool] != before[tc.pool]+1 || after["primary"]+after["replica"] != before["primary"]+before["replica"]+1 {
				t.Errorf("loads %v, %v before: want one more from the %s", after, before, tc.pool)
			}
			// What was loaded is what the cache now holds.
			b.eventuallyHit(v1.ID, tc.want)
			if tc.window == 0 {
				return
			}

			// Once the window has passed (its key expires: made to expire
			// now rather than waited for), misses read the replica again.
			if err := a.rdb.PExpire(bg, a.windowKey(), time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the window to close", func() bool { return a.rdb.Exists(bg, a.windowKey()).Val() == 0 })
			other, err := a.store.Create(bg, "", task.Task{Title: "after the window", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
			if err != nil {
				t.Fatal(err)
			}
			before = metricsByPool(b)
			b.get(other.ID, 1)
			if after := metricsByPool(b); after["replica"] != before["replica"]+1 || after["primary"] != before["primary"] {
				t.Errorf("loads %v after the window, %v before: want one more from the replica", after, before)
			}
		})
	}
}

// metricsByPool reads taskfn_cache_loads_total by pool.
func metricsByPool(w *world) map[string]float64 {
	w.t.Helper()
	return metricstest.ByLabel(w.t, w.reg, "taskfn_cache_loads_total", "pool")
}

// TestCloseInvalidates: a process that still owes an invalidation when it
// is stopped makes it in Close, so a clean shutdown leaves no entry older
// than a write it acknowledged. Redis keeps its data across the crash
// (append-only file), so the entry a's write could not refresh is still
// there, current, when Redis is back; a's repair loop has tried once and
// waits an hour, so only Close can make the invalidation.
func TestCloseInvalidates(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t, "--appendonly", "yes", "--appendfsync", "always")
	cfg := failureConfig(t, srv)
	cfg.RepairInterval = time.Hour
	a := newWorld(t, cfg, nil)
	b := newWorldOn(t, cfg, a.store, nil)
	tk := a.create("before the crash")
	a.eventuallyHit(tk.ID, 1)

	srv.Kill()
	up := a.update(tk.ID, "while Redis was down")
	if a.c.Pending() == 0 {
		t.Fatal("a refresh that could not reach Redis was not recorded")
	}
	eventually(t, "the repair loop to try once", func() bool { return a.redisCalls("invalidate") >= 1 })
	srv.Start()

	// Redis is back with version 1 current: the state a owes a repair for.
	if v, current := a.entry(tk.ID); !current || !isVersion(t, v, 1) {
		t.Fatalf("entry %q (current %t) before Close, want version 1 current", v, current)
	}
	if n := a.gauge("taskfn_cache_invalidations_total"); n != 0 || a.c.Pending() == 0 {
		t.Fatalf("%v invalidations, %d pending before Close: the repair loop made it", n, a.c.Pending())
	}

	if err := a.c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := a.gauge("taskfn_cache_invalidations_total"); n != 1 {
		t.Errorf("%v invalidations by Close, want 1", n)
	}
	if v, current := a.entry(tk.ID); current {
		t.Errorf("entry %q still current after Close", v)
	}
	if got := b.get(tk.ID, 2); got.Title != up.Title {
		t.Errorf("b read %q after a closed", got.Title)
	}
}

// isVersion reports whether raw entry v holds a task of version want.
func isVersion(t *testing.T, v string, want int64) bool {
	t.Helper()
	e, found, err := cache.DecodeEntry(v)
	return err == nil && found && e.Version == want
}
