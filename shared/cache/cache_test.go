package cache_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// world is one test's database, store, counted loaders and cache.
type world struct {
	t       testing.TB
	cfg     cache.Config
	store   *task.Store
	c       *cache.Cache
	reg     *prometheus.Registry
	rdb     *redis.Client
	replica atomic.Int64 // loader calls
	primary atomic.Int64
	log     *logLines // what the cache logged at warning level and above
}

// logLines keeps each line a zerolog logger writes, for tests that count
// what the cache logged.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.lines = append(l.lines, m)
	l.mu.Unlock()
	return len(p), nil
}

// breakerTo counts the breaker's moves to state ("open", "half-open",
// "closed"), as the cache logged them when they happened.
func (w *world) breakerTo(state string) int {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	n := 0
	for _, m := range w.log.lines {
		if m["message"] == "redis circuit breaker" && m["to"] == state {
			n++
		}
	}
	return n
}

// newWorld opens a cache on cfg (cachetest.Config plus the test's
// changes) over a fresh database. wrap, if set, wraps the replica loader.
func newWorld(t testing.TB, cfg cache.Config, wrap func(cache.Loader) cache.Loader) *world {
	t.Helper()
	cachetest.Cleanup(t, cfg)
	store, err := task.NewStore(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	return newWorldOn(t, cfg, store, wrap)
}

// newWorldOn is another process ("pod") on the same database and Redis.
func newWorldOn(t testing.TB, cfg cache.Config, store *task.Store, wrap func(cache.Loader) cache.Loader) *world {
	t.Helper()
	w := &world{t: t, cfg: cfg, store: store, reg: prometheus.NewRegistry(), rdb: cachetest.Client(t, cfg.RedisURL), log: &logLines{}}
	replica := cache.Loader(store.Get)
	if wrap != nil {
		replica = wrap(replica)
	}
	load := cache.Loaders{
		Replica: func(ctx context.Context, id uuid.UUID) (task.Task, error) {
			w.replica.Add(1)
			return replica(ctx, id)
		},
		Primary: func(ctx context.Context, id uuid.UUID) (task.Task, error) {
			w.primary.Add(1)
			return store.GetPrimary(ctx, id)
		},
	}
	c, err := cache.New(t.Context(), cfg, load, w.reg, zerolog.New(w.log).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	w.c = c
	return w
}

var bg = context.Background()

// create stores a task the way the API does: begin, commit, refresh.
func (w *world) create(title string) task.Task {
	w.t.Helper()
	cw := w.c.BeginWrite(bg)
	tk, err := w.store.Create(bg, "", task.Task{Title: title, Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
	if err != nil {
		w.t.Fatal(err)
	}
	cw.Stored(bg, tk)
	return tk
}

// update renames a task the way the API does.
func (w *world) update(id uuid.UUID, title string) task.Task {
	w.t.Helper()
	cw := w.c.BeginWrite(bg)
	tk, err := w.store.Update(bg, "", id, func(cur task.Task) (task.Task, error) {
		cur.Title = title
		return cur, nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	cw.Stored(bg, tk)
	return tk
}

// get expects c.Get to return a task of version v (0: not found).
func (w *world) get(id uuid.UUID, v int64) task.Task {
	w.t.Helper()
	tk, err := cache.GetTask(bg, w.c, id)
	switch {
	case v == 0 && !errors.Is(err, task.ErrNotFound):
		w.t.Fatalf("Get %s: %+v, %v; want not found", id, tk, err)
	case v != 0 && err != nil:
		w.t.Fatalf("Get %s: %v; want version %d", id, err, v)
	case v != 0 && tk.Version != v:
		w.t.Fatalf("Get %s: version %d, want %d", id, tk.Version, v)
	}
	return tk
}

// eventuallyHit reads id (version v) until a read is a hit: the entry is
// cached and this process trusts Redis again. A Redis call that timed out
// on a loaded machine only delays it.
func (w *world) eventuallyHit(id uuid.UUID, v int64) {
	w.t.Helper()
	eventually(w.t, "a cache hit", func() bool {
		hits := w.results()["hit"]
		w.get(id, v)
		return w.results()["hit"] > hits
	})
}

// results reads taskfn_cache_requests_total by result.
func (w *world) results() map[string]float64 {
	w.t.Helper()
	return metricstest.ByLabel(w.t, w.reg, "taskfn_cache_requests_total", "result")
}

// redisCalls is how many Redis round trips of op were made.
func (w *world) redisCalls(op string) uint64 {
	w.t.Helper()
	return uint64(metricstest.Value(w.t, w.reg, "taskfn_cache_request_duration_seconds", "op", op))
}

// gauge reads a single-series gauge or counter.
func (w *world) gauge(name string) float64 {
	w.t.Helper()
	return metricstest.Value(w.t, w.reg, name)
}

// The key layout docs/cache.md describes.
func (w *world) key(id uuid.UUID) string { return w.cfg.KeyPrefix + "task:" + id.String() }
func (w *world) genKey() string          { return w.cfg.KeyPrefix + "task-generation" }
func (w *world) windowKey() string       { return w.cfg.KeyPrefix + "task-primary-window" }

// entry returns the raw entry of id and whether it belongs to the current
// generation.
func (w *world) entry(id uuid.UUID) (string, bool) {
	w.t.Helper()
	v, err := w.rdb.Get(bg, w.key(id)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	g, err := w.rdb.Get(bg, w.genKey()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		w.t.Fatal(err)
	}
	return v, g != "" && len(v) > len(g) && v[:len(g)+1] == g+" "
}

func TestReadThrough(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, w *world)
	tests := []struct {
		name  string
		cfg   func(*cache.Config)
		check check
	}{
		{name: "miss loads from the replica, then hits", check: func(t *testing.T, w *world) {
			tk := w.create("a")
			if _, err := w.rdb.Del(bg, w.key(tk.ID)).Result(); err != nil {
				t.Fatal(err)
			}
			got := w.get(tk.ID, 1)
			// Decoded, no values are {} where the store has nil.
			if d := cmp.Diff(tk, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("loaded task (-stored +got):\n%s", d)
			}
			got = w.get(tk.ID, 1)
			if d := cmp.Diff(tk, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("cached task (-stored +got):\n%s", d)
			}
			if n := w.replica.Load(); n != 1 {
				t.Errorf("replica loads %d, want 1", n)
			}
			want := map[string]float64{"hit": 1, "miss": 1, "negative_hit": 0, "error": 0}
			if d := cmp.Diff(want, w.results()); d != "" {
				t.Errorf("results (-want +got):\n%s", d)
			}
		}},
		{name: "an entry of a revision before projects is read from the primary and replaced", check: func(t *testing.T, w *world) {
			tk := w.create("old")
			// What that revision wrote: the owner where the project now is.
			cur := w.rdb.Get(bg, w.key(tk.ID)).Val()
			gen, rest, _ := strings.Cut(cur, " ")
			_, rest, _ = strings.Cut(rest, " ")
			old := gen + " T " + rest
			if err := w.rdb.Set(bg, w.key(tk.ID), old, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			got := w.get(tk.ID, 1)
			if got.Project != tk.Project || w.primary.Load() != 1 || w.replica.Load() != 0 {
				t.Errorf("got %+v after %d primary and %d replica loads, want the task from the primary", got, w.primary.Load(), w.replica.Load())
			}
			if now := w.rdb.Get(bg, w.key(tk.ID)).Val(); !strings.HasPrefix(now, gen+" U ") {
				t.Errorf("entry after the read %q, want the current kind", now)
			}
			w.get(tk.ID, 1)
			if w.primary.Load() != 1 {
				t.Error("the replaced entry was not hit")
			}
		}},
		{name: "a created task is a hit at once", check: func(t *testing.T, w *world) {
			tk := w.create("b")
			w.get(tk.ID, 1)
			if w.replica.Load()+w.primary.Load() != 0 || w.results()["hit"] != 1 {
				t.Errorf("loads %d+%d, results %v", w.replica.Load(), w.primary.Load(), w.results())
			}
		}},
		{name: "unknown id is cached as not found", check: func(t *testing.T, w *world) {
			id := uuid.New()
			w.get(id, 0)
			w.get(id, 0)
			w.get(id, 0)
			if n := w.replica.Load(); n != 1 {
				t.Errorf("replica loads %d, want 1", n)
			}
			if r := w.results(); r["miss"] != 1 || r["negative_hit"] != 2 {
				t.Errorf("results %v", r)
			}
			ttl := w.rdb.PTTL(bg, w.key(id)).Val()
			if ttl <= 0 || ttl > w.cfg.NegativeTTL {
				t.Errorf("negative entry TTL %s, want up to %s", ttl, w.cfg.NegativeTTL)
			}
		}},
		{name: "TTL has jitter and expires", cfg: func(c *cache.Config) { c.TTL, c.TTLJitter = time.Second, 0.25 },
			check: func(t *testing.T, w *world) {
				var ids []uuid.UUID
				seen := map[time.Duration]bool{}
				for range 20 {
					start := time.Now()
					id := w.create("ttl").ID
					ttl := w.rdb.PTTL(bg, w.key(id)).Val()
					if ttl < 750*time.Millisecond-time.Since(start) || ttl > 1250*time.Millisecond {
						t.Errorf("TTL %s, want within 1s ± 25%%", ttl)
					}
					seen[ttl.Round(10*time.Millisecond)] = true
					ids = append(ids, id)
				}
				if len(seen) < 3 {
					t.Errorf("TTLs %v: no jitter", seen)
				}
				time.Sleep(1300 * time.Millisecond)
				w.get(ids[0], 1)
				w.get(ids[0], 1)
				if w.replica.Load() != 1 || w.results()["miss"] != 1 || w.results()["hit"] != 1 {
					t.Errorf("after expiry: loads %d, results %v", w.replica.Load(), w.results())
				}
			}},
		{name: "negative entry expires", cfg: func(c *cache.Config) { c.NegativeTTL = 200 * time.Millisecond },
			check: func(t *testing.T, w *world) {
				id := uuid.New()
				w.get(id, 0)
				if ttl := w.rdb.PTTL(bg, w.key(id)).Val(); ttl > w.cfg.NegativeTTL {
					t.Errorf("negative entry TTL %s, want up to %s", ttl, w.cfg.NegativeTTL)
				}
				// Waited for, not slept on: how soon the next read comes
				// is the machine's business.
				eventually(t, "the negative entry to expire", func() bool { return w.rdb.Exists(bg, w.key(id)).Val() == 0 })
				w.get(id, 0)
				if n := w.replica.Load(); n != 2 {
					t.Errorf("replica loads %d, want 2", n)
				}
			}},
		{name: "update refreshes the entry", check: func(t *testing.T, w *world) {
			tk := w.create("c")
			w.get(tk.ID, 1)
			up := w.update(tk.ID, "c2")
			if got := w.get(tk.ID, 2); got.Title != "c2" || !got.UpdatedAt.Equal(up.UpdatedAt) {
				t.Errorf("after update: %+v", got)
			}
			if w.replica.Load()+w.primary.Load() != 0 {
				t.Errorf("a refreshed entry was loaded from the database")
			}
		}},
		{name: "trash reads as not found, and a restore replaces it", check: func(t *testing.T, w *world) {
			tk := w.create("t")
			w.get(tk.ID, 1)
			late := w.c.BeginWrite(bg) // a writer of the version before, whose refresh comes last
			cw := w.c.BeginWrite(bg)
			trashed, err := w.store.Trash(bg, "", tk.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			cw.Trashed(bg, tk.ID, trashed.Version)
			w.get(tk.ID, 0)
			late.Stored(bg, tk)
			w.get(tk.ID, 0)
			cw = w.c.BeginWrite(bg)
			restored, err := w.store.Restore(bg, "", tk.ID, func(task.Trashed) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			cw.Stored(bg, restored)
			if got := w.get(tk.ID, 3); got.Title != "t" {
				t.Errorf("restored: %+v", got)
			}
			if w.replica.Load()+w.primary.Load() != 0 {
				t.Errorf("loads %d+%d, want every read served by the writes' entries", w.replica.Load(), w.primary.Load())
			}
		}},
		{name: "purge leaves a tombstone that reads as not found", check: func(t *testing.T, w *world) {
			tk := w.create("d")
			if _, err := w.store.Trash(bg, "", tk.ID, nil); err != nil {
				t.Fatal(err)
			}
			cw := w.c.BeginWrite(bg)
			if err := w.store.Purge(bg, "", tk.ID, func(task.Trashed) error { return nil }); err != nil {
				t.Fatal(err)
			}
			cw.Deleted(bg, tk.ID)
			w.get(tk.ID, 0)
			if r := w.results(); r["negative_hit"] != 1 || w.replica.Load() != 0 {
				t.Errorf("results %v, loads %d", r, w.replica.Load())
			}
			ttl := w.rdb.PTTL(bg, w.key(tk.ID)).Val()
			if ttl < w.cfg.TombstoneTTL-time.Second || ttl > w.cfg.TombstoneTTL {
				t.Errorf("tombstone TTL %s, want %s", ttl, w.cfg.TombstoneTTL)
			}
		}},
		{name: "create replaces a negative entry", check: func(t *testing.T, w *world) {
			id := uuid.Must(uuid.NewV7())
			w.get(id, 0)
			cw := w.c.BeginWrite(bg)
			tk, err := w.store.Create(bg, "", task.Task{ID: id, Title: "late", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
			if err != nil {
				t.Fatal(err)
			}
			cw.Stored(bg, tk)
			w.get(id, 1)
			if n := w.replica.Load(); n != 1 {
				t.Errorf("replica loads %d, want 1 (the first, negative, read)", n)
			}
		}},
		{name: "disabled mode reads the replica every time", cfg: func(c *cache.Config) { c.Enabled = false },
			check: func(t *testing.T, w *world) {
				tk := w.create("e")
				w.get(tk.ID, 1)
				w.get(tk.ID, 1)
				w.update(tk.ID, "e2")
				w.get(tk.ID, 2)
				if n := w.replica.Load(); n != 3 {
					t.Errorf("replica loads %d, want 3", n)
				}
				if keys := w.rdb.Keys(bg, w.cfg.KeyPrefix+"*").Val(); len(keys) != 0 {
					t.Errorf("disabled cache wrote %v", keys)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := cachetest.Config(t, "")
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			tc.check(t, newWorld(t, cfg, nil))
		})
	}
}

// TestSetRules replays the races the set script exists for, one step at a
// time, and checks which value survives.
func TestSetRules(t *testing.T) {
	t.Parallel()
	cfg := cachetest.Config(t, "")
	cfg.PrimaryWindow = 0 // so only a poison sends reads to the primary
	w := newWorld(t, cfg, nil)

	// observe is what a reader learns on a miss before it loads.
	observe := func(id uuid.UUID) cache.Seen {
		t.Helper()
		s, err := w.c.Observe(bg)
		if err != nil {
			t.Fatalf("read script: %v", err)
		}
		return s
	}

	t.Run("reader's old load after the writer's refresh is dropped", func(t *testing.T) {
		tk := w.create("r1")
		w.rdb.Del(bg, w.key(tk.ID))
		s := observe(tk.ID)
		old := tk
		w.update(tk.ID, "r1 new")
		w.c.Place(bg, tk.ID, s, &old)
		if got := w.get(tk.ID, 2); got.Title != "r1 new" {
			t.Errorf("title %q", got.Title)
		}
	})
	t.Run("refreshes arriving out of order keep the newest", func(t *testing.T) {
		tk := w.create("r2")
		first := w.c.BeginWrite(bg)
		v2, err := w.store.Update(bg, "", tk.ID, func(cur task.Task) (task.Task, error) { cur.Title = "v2"; return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		second := w.c.BeginWrite(bg)
		v3, err := w.store.Update(bg, "", tk.ID, func(cur task.Task) (task.Task, error) { cur.Title = "v3"; return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		second.Stored(bg, v3)
		first.Stored(bg, v2)
		if got := w.get(tk.ID, 3); got.Title != "v3" {
			t.Errorf("title %q", got.Title)
		}
	})
	t.Run("reader's load from before a purge does not outlive the tombstone", func(t *testing.T) {
		tk := w.create("r3")
		w.rdb.Del(bg, w.key(tk.ID))
		s := observe(tk.ID)
		if _, err := w.store.Trash(bg, "", tk.ID, nil); err != nil {
			t.Fatal(err)
		}
		cw := w.c.BeginWrite(bg)
		if err := w.store.Purge(bg, "", tk.ID, func(task.Trashed) error { return nil }); err != nil {
			t.Fatal(err)
		}
		cw.Deleted(bg, tk.ID)
		w.c.Place(bg, tk.ID, s, &tk)
		w.get(tk.ID, 0)
		// A writer's late refresh of an earlier version loses too.
		late := w.c.BeginWrite(bg)
		late.Stored(bg, tk)
		w.get(tk.ID, 0)
	})
	t.Run("reader's 'not found' from before a create is dropped", func(t *testing.T) {
		id := uuid.Must(uuid.NewV7())
		s := observe(id)
		cw := w.c.BeginWrite(bg)
		tk, err := w.store.Create(bg, "", task.Task{ID: id, Title: "r4", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
		if err != nil {
			t.Fatal(err)
		}
		cw.Stored(bg, tk)
		w.c.Place(bg, id, s, nil)
		w.get(id, 1)
	})
	t.Run("reader past its deadline does not cache", func(t *testing.T) {
		tk := w.create("r5")
		w.rdb.Del(bg, w.key(tk.ID))
		s := cache.Late(observe(tk.ID))
		w.c.Place(bg, tk.ID, s, &tk)
		if _, ok := w.entry(tk.ID); ok {
			t.Error("a late reader placed its value")
		}
	})
	t.Run("reader across an invalidation does not cache", func(t *testing.T) {
		tk := w.create("r6")
		w.rdb.Del(bg, w.key(tk.ID))
		s := observe(tk.ID)
		if err := w.c.Invalidate(bg); err != nil {
			t.Fatal(err)
		}
		w.c.Place(bg, tk.ID, s, &tk)
		if _, ok := w.entry(tk.ID); ok {
			t.Error("a reader that saw the old generation placed its value")
		}
	})
	// A writer that is not current (an invalidation since it began, or past
	// its deadline) cannot tell whether a newer write's refresh was lost,
	// so it poisons the entry: readers load from the primary, and nothing
	// older than its version may come back.
	for _, tc := range []struct {
		name  string
		spoil func(*cache.Write)
	}{
		{"writer across an invalidation poisons", func(*cache.Write) {
			if err := w.c.Invalidate(bg); err != nil {
				t.Fatal(err)
			}
		}},
		{"writer past its deadline poisons", func(cw *cache.Write) { cw.Late() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := w.create("r7")
			cw := w.c.BeginWrite(bg)
			tc.spoil(&cw)
			// A reader caches version 1 in the current generation, as one
			// that loaded just before the commit would.
			w.rdb.Del(bg, w.key(tk.ID))
			w.c.Place(bg, tk.ID, observe(tk.ID), &tk)
			up, err := w.store.Update(bg, "", tk.ID, func(cur task.Task) (task.Task, error) { cur.Title = "r7 new"; return cur, nil })
			if err != nil {
				t.Fatal(err)
			}
			gen := w.rdb.Get(bg, w.genKey()).Val()
			cw.Stored(bg, up)
			if w.rdb.Get(bg, w.genKey()).Val() != gen {
				t.Error("a refresh changed the generation")
			}
			raw, ok := w.entry(tk.ID)
			if f := strings.Fields(raw); !ok || len(f) != 3 || f[1] != "P" || f[2] != "2" {
				t.Fatalf("entry %q, want a poison of version 2", raw)
			}
			// A reader that loaded version 1 earlier cannot put it back.
			late := observe(tk.ID)
			w.c.Place(bg, tk.ID, late, &tk)
			if raw2, _ := w.entry(tk.ID); raw2 != raw {
				t.Errorf("entry %q after an older placement, want %q", raw2, raw)
			}
			p, r := w.primary.Load(), w.replica.Load()
			w.get(tk.ID, 2)
			w.get(tk.ID, 2)
			if w.primary.Load() != p+1 || w.replica.Load() != r {
				t.Errorf("primary loads +%d, replica +%d; want the poison to cost one primary load", w.primary.Load()-p, w.replica.Load()-r)
			}
		})
	}
	t.Run("late trash poisons", func(t *testing.T) {
		// A restore's refresh may have been lost meanwhile: a trashed entry
		// could then hide a live task, so it poisons like any late write.
		tk := w.create("r7")
		cw := w.c.BeginWrite(bg)
		cw.Late()
		tr, err := w.store.Trash(bg, "", tk.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		cw.Trashed(bg, tk.ID, tr.Version)
		if raw, ok := w.entry(tk.ID); !ok || strings.Fields(raw)[1] != "P" {
			t.Errorf("entry %q, want a poison", raw)
		}
		w.get(tk.ID, 0)
	})
	t.Run("late purge still leaves a tombstone", func(t *testing.T) {
		tk := w.create("r8")
		if _, err := w.store.Trash(bg, "", tk.ID, nil); err != nil {
			t.Fatal(err)
		}
		cw := w.c.BeginWrite(bg)
		cw.Late()
		if err := w.store.Purge(bg, "", tk.ID, func(task.Trashed) error { return nil }); err != nil {
			t.Fatal(err)
		}
		cw.Deleted(bg, tk.ID)
		if raw, ok := w.entry(tk.ID); !ok || strings.Fields(raw)[1] != "X" {
			t.Errorf("entry %q, want a tombstone", raw)
		}
		w.get(tk.ID, 0)
	})
	t.Run("writer after Redis lost its data poisons", func(t *testing.T) {
		tk := w.create("r9")
		cw := w.c.BeginWrite(bg)
		up, err := w.store.Update(bg, "", tk.ID, func(cur task.Task) (task.Task, error) { cur.Title = "r9 new"; return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		w.rdb.Del(bg, w.genKey(), w.key(tk.ID))
		cw.Stored(bg, up)
		if raw, ok := w.entry(tk.ID); !ok || strings.Fields(raw)[1] != "P" {
			t.Errorf("entry %q, want a poison in a new generation", raw)
		}
		w.get(tk.ID, 2)
	})
}

func TestSingleflight(t *testing.T) {
	t.Parallel()
	cfg := cachetest.Config(t, "")
	release := make(chan struct{})
	var loadCtxErr atomic.Value
	w := newWorld(t, cfg, func(next cache.Loader) cache.Loader {
		return func(ctx context.Context, id uuid.UUID) (task.Task, error) {
			<-release
			tk, err := next(ctx, id)
			if ctx.Err() != nil {
				loadCtxErr.Store(ctx.Err())
			}
			return tk, err
		}
	})
	tk, err := w.store.Create(bg, "", task.Task{Title: "hot", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	// The first caller gives up at once; the load it started must still
	// serve everyone else.
	quitter, quit := context.WithCancel(bg)
	defer quit()
	for i := range n {
		ctx := bg
		if i == 0 {
			ctx = quitter
		}
		wg.Go(func() {
			got, err := cache.GetTask(ctx, w.c, tk.ID)
			switch {
			case i == 0:
				if !errors.Is(err, context.Canceled) {
					errs <- errors.New("the quitter did not see its cancellation")
				}
			case err != nil:
				errs <- err
			case got.Version != 1 || got.Title != "hot":
				errs <- errors.New("wrong task")
			}
		})
		if i == 0 {
			// Let it start the load, then leave.
			deadline := time.Now().Add(5 * time.Second)
			for w.replica.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			quit()
		}
	}
	// Wait until every caller has missed and joined.
	deadline := time.Now().Add(10 * time.Second)
	for w.results()["miss"] < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := w.replica.Load(); got != 1 {
		t.Errorf("%d concurrent misses made %d database loads, want 1", n, got)
	}
	if err := loadCtxErr.Load(); err != nil {
		t.Errorf("the shared load's context ended: %v", err)
	}
	w.get(tk.ID, 1)
	if r := w.results(); r["hit"] != 1 {
		t.Errorf("the shared load was not cached: %v", r)
	}
}

func TestNegativeFlood(t *testing.T) {
	t.Parallel()
	cfg := cachetest.Config(t, "")
	cfg.NegativeTTL = time.Minute // the flood must fit in it
	w := newWorld(t, cfg, nil)
	const ids, rounds = 300, 5
	flood := make([]uuid.UUID, ids)
	for i := range flood {
		flood[i] = uuid.Must(uuid.NewV7())
	}
	var wg sync.WaitGroup
	for r := range rounds {
		for i := range 4 {
			wg.Go(func() {
				for j := i; j < ids; j += 4 {
					if _, err := w.c.Get(bg, flood[(j+r*7)%ids]); !errors.Is(err, task.ErrNotFound) {
						t.Errorf("Get: %v, want not found", err)
					}
				}
			})
		}
		wg.Wait()
	}
	if got := w.replica.Load(); got != ids {
		t.Errorf("%d random ids read %d times each reached the database %d times, want %d", ids, rounds, got, ids)
	}
	// Creating one of them replaces its negative entry at once.
	cw := w.c.BeginWrite(bg)
	tk, err := w.store.Create(bg, "", task.Task{ID: flood[42], Title: "now real", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	cw.Stored(bg, tk)
	if got := w.get(flood[42], 1); got.Title != "now real" {
		t.Errorf("title %q", got.Title)
	}
	if got := w.replica.Load(); got != ids {
		t.Errorf("the created task was loaded from the database (%d loads)", got)
	}
}

// TestStoredMany: a bulk change's refreshes, in one pipeline, place every
// task as Stored would, also on a Redis that lost its scripts.
func TestStoredMany(t *testing.T) {
	t.Parallel()
	w := newWorld(t, cachetest.Config(t, ""), nil)
	var tasks []task.Task
	for i := range 5 {
		tasks = append(tasks, w.create(fmt.Sprint("bulk ", i)))
	}
	for round, flush := range []bool{false, true} {
		if flush {
			if err := w.rdb.ScriptFlush(bg).Err(); err != nil {
				t.Fatal(err)
			}
		}
		cw := w.c.BeginWrite(bg)
		var next []task.Task
		for _, tk := range tasks {
			up, err := w.store.Update(bg, "", tk.ID, func(cur task.Task) (task.Task, error) {
				cur.Title = fmt.Sprintf("%s, round %d", tk.Title, round)
				return cur, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			next = append(next, up)
		}
		cw.StoredMany(bg, next)
		loads := w.replica.Load() + w.primary.Load()
		for _, up := range next {
			if got := w.get(up.ID, up.Version); got.Title != up.Title {
				t.Errorf("round %d: cached %q, want %q", round, got.Title, up.Title)
			}
		}
		if n := w.replica.Load() + w.primary.Load(); n != loads {
			t.Errorf("round %d: %d loads after StoredMany, want every GET a hit", round, n-loads)
		}
		if w.c.Pending() != 0 {
			t.Errorf("round %d: %d refreshes counted failed", round, w.c.Pending())
		}
		tasks = next
	}
}
