package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/task"
)

// failureConfig is tuned so failures show quickly: a breaker that opens
// after 3 failures and probes after a second, and a prompt repair. The
// Redis timeout stays cachetest's: a shorter one fails calls on a loaded
// machine that the tests then cannot tell from the failures they cause.
func failureConfig(t *testing.T, srv *cachetest.Server) cache.Config {
	cfg := cachetest.Config(t, srv.URL())
	cfg.BreakerFailures = 3
	cfg.BreakerCooldown = time.Second
	cfg.RepairInterval = 20 * time.Millisecond
	return cfg
}

// eventually polls cond until it holds, giving up after 30s: a bound for
// a broken test, not a measure of the code.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// breakerHolds reads id n times with the breaker open and checks that
// every read was served from the primary without a Redis round trip, but
// for the breaker's own probes (one per cooldown that ended meanwhile):
// counted, not timed, so a slow machine cannot decide it.
func (w *world) breakerHolds(id uuid.UUID, v int64, n int) {
	w.t.Helper()
	if s := w.gauge("taskfn_cache_breaker_state"); s != 2 {
		w.t.Fatalf("breaker state %v, want 2 (open)", s)
	}
	calls, primary, probes := w.redisCalls("get"), w.primary.Load(), w.breakerTo("half-open")
	for range n {
		w.get(id, v)
	}
	made := w.redisCalls("get") - calls
	allowed := uint64(w.breakerTo("half-open")-probes) * uint64(w.cfg.BreakerProbes)
	if made > allowed {
		w.t.Errorf("%d Redis reads with the breaker open, %d of them probes", made, allowed)
	}
	if got := w.primary.Load() - primary; got != int64(n) {
		w.t.Errorf("%d primary loads for %d requests", got, n)
	}
}

// TestRedisKilled crashes Redis under a running cache and brings it back.
// Two caches share the database and Redis, as two pods would: a writes
// while Redis is down, b only reads.
func TestRedisKilled(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		keeps bool // the old entry survives the crash
	}{
		// Comes back empty: nothing stale can survive, but the breaker and
		// recovery are the same.
		{"no persistence", nil, false},
		// Comes back with the old entry: only the new generation keeps it
		// from being served.
		{"append-only file", []string{"--appendonly", "yes", "--appendfsync", "always"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := cachetest.StartServer(t, tc.args...)
			cfg := failureConfig(t, srv)
			a := newWorld(t, cfg, nil)
			b := newWorldOn(t, cfg, a.store, nil)

			tk := a.create("before the crash")
			// Cached, and seen cached by both, before the crash.
			a.eventuallyHit(tk.ID, 1)
			b.eventuallyHit(tk.ID, 1)

			srv.Kill()
			// Every request is served, from the primary; each tries Redis
			// once (no retries) until BreakerFailures have failed and the
			// breaker opens.
			gets, primary := a.redisCalls("get"), a.primary.Load()
			for range cfg.BreakerFailures {
				a.get(tk.ID, 1)
			}
			if n := a.redisCalls("get") - gets; n != uint64(cfg.BreakerFailures) {
				t.Errorf("%d Redis reads for %d requests with Redis down, want one each", n, cfg.BreakerFailures)
			}
			if n := a.primary.Load() - primary; n != int64(cfg.BreakerFailures) {
				t.Errorf("%d primary loads for %d requests with Redis down", n, cfg.BreakerFailures)
			}
			// Open: no Redis round trip at all, so no timeout to pay.
			a.breakerHolds(tk.ID, 1, 100)

			// A write while Redis is down is acknowledged and visible at once.
			up := a.update(tk.ID, "while Redis was down")
			if a.c.Pending() == 0 {
				t.Fatal("a refresh that could not reach Redis was not recorded")
			}
			a.get(tk.ID, 2)

			srv.Start()
			if kept := a.rdb.Exists(bg, a.key(tk.ID)).Val() == 1; kept != tc.keeps {
				t.Errorf("entry survived the crash: %v, want %v", kept, tc.keeps)
			}
			// a invalidates the cache before it trusts Redis again; until
			// then, and after, it never serves version 1.
			eventually(t, "a to invalidate the cache", func() bool {
				a.get(tk.ID, 2)
				return a.c.Pending() == 0
			})
			// Hits resume once the breaker has closed again.
			a.eventuallyHit(tk.ID, 2)
			if s := a.gauge("taskfn_cache_breaker_state"); s != 0 {
				t.Errorf("breaker state %v after recovery", s)
			}
			// b saw no failure; after a's invalidation it cannot find
			// version 1 either, even where Redis kept it.
			if got := b.get(tk.ID, 2); got.Title != up.Title {
				t.Errorf("b read %q", got.Title)
			}
			if a.gauge("taskfn_cache_invalidations_total") < 1 {
				t.Error("no invalidation counted")
			}
		})
	}
}

// TestSlowRedis stalls the test's own Redis while requests run: every
// request is answered during the stall, the breaker opens and then spares
// Redis, and a write made during the stall is not undone by the stale
// entry when Redis recovers.
func TestSlowRedis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// stall makes srv stop answering and returns once it has; resume
		// returns once srv answers again.
		stall func(t *testing.T, srv *cachetest.Server) (resume func())
	}{
		// A frozen event loop, as DEBUG SLEEP or a long fork makes it,
		// held until the test has done everything it needs to during it.
		{"frozen process", func(t *testing.T, srv *cachetest.Server) func() {
			srv.Freeze()
			return srv.Thaw
		}},
		// Alive, but postponing every command. The pause cannot be ended
		// early (CLIENT UNPAUSE is paused too): long enough for the steps
		// below with room to spare; the breaker's cooldown covers the
		// write even if the pause ended before it.
		{"CLIENT PAUSE", func(t *testing.T, srv *cachetest.Server) func() {
			admin := cachetest.Client(t, srv.URL())
			if err := admin.ClientPause(bg, 5*time.Second).Err(); err != nil {
				t.Fatal(err)
			}
			return func() {
				eventually(t, "Redis to answer after the pause", func() bool { return admin.Ping(bg).Err() == nil })
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := cachetest.StartServer(t)
			cfg := failureConfig(t, srv)
			cfg.BreakerCooldown = 2 * time.Second
			a := newWorld(t, cfg, nil)
			b := newWorldOn(t, cfg, a.store, nil)
			tk := a.create("before the stall")
			a.eventuallyHit(tk.ID, 1)
			b.eventuallyHit(tk.ID, 1)

			resume := tc.stall(t, srv)
			// Every request is answered, from the primary, until the
			// breaker opens; none waits for Redis to come back.
			eventually(t, "the breaker to open during the stall", func() bool {
				a.get(tk.ID, 1)
				return a.gauge("taskfn_cache_breaker_state") == 2
			})
			a.breakerHolds(tk.ID, 1, 20)
			up := a.update(tk.ID, "during the stall")
			// The refresh did not land (Redis stalled or skipped), so Redis
			// still holds version 1: the case the rest of the test is about.
			if a.c.Pending() == 0 {
				t.Fatal("the write's refresh landed during the stall")
			}
			a.get(tk.ID, 2)

			resume()
			eventually(t, "a to invalidate the cache", func() bool {
				a.get(tk.ID, 2)
				return a.c.Pending() == 0
			})
			a.eventuallyHit(tk.ID, 2)
			if got := b.get(tk.ID, 2); got.Title != up.Title {
				t.Errorf("b read %q", got.Title)
			}
		})
	}
}

// TestFullRedis fills the test's own Redis (noeviction) so that every
// write to it fails: reads are served, writes are acknowledged and
// visible, and the cache recovers once Redis has room again.
func TestFullRedis(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t, "--maxmemory-policy", "noeviction")
	cfg := failureConfig(t, srv)
	a := newWorld(t, cfg, nil)
	b := newWorldOn(t, cfg, a.store, nil)
	cached := a.create("cached before full")
	a.eventuallyHit(cached.ID, 1)

	// Some data, then a limit far below it: every write command is refused
	// with OOM from now on, however small, and nothing is evicted.
	admin := cachetest.Client(t, srv.URL())
	junk := strings.Repeat("x", 64<<10)
	for i := range 32 {
		if err := admin.Set(bg, fmt.Sprintf("junk:%d", i), junk, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := admin.ConfigSet(bg, "maxmemory", "1mb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := admin.Set(bg, "probe", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Redis is not full: SET answered %v", err)
	}

	// A cached task still hits; a new one is served but cannot be cached.
	a.get(cached.ID, 1)
	fresh, err := a.store.Create(bg, "", task.Task{Title: "created while full", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	// Each read loads it: from the replica, or from the primary should a
	// Redis call time out on a busy machine; never from the cache.
	loads := a.replica.Load() + a.primary.Load()
	a.get(fresh.ID, 1)
	a.get(fresh.ID, 1)
	if n := a.replica.Load() + a.primary.Load() - loads; n != 2 {
		t.Errorf("%d loads for two reads of an uncacheable task", n)
	}
	if _, ok := a.entry(fresh.ID); ok {
		t.Error("a task created while Redis was full was cached")
	}

	// A write cannot refresh: its stale entry is deleted, and a reads from
	// the primary until it can invalidate.
	up := a.update(cached.ID, "changed while full")
	if a.c.Pending() == 0 {
		t.Error("a refresh refused for lack of memory was not recorded")
	}
	if got := a.get(cached.ID, 2); got.Title != up.Title {
		t.Errorf("a read %q", got.Title)
	}
	if got := b.get(cached.ID, 2); got.Title != up.Title {
		t.Errorf("b read %q", got.Title)
	}
	if s := a.gauge("taskfn_cache_breaker_state"); s != 0 {
		t.Errorf("breaker state %v: out-of-memory replies must not open it", s)
	}

	if err := admin.ConfigSet(bg, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a to use the cache again", func() bool {
		hits := a.results()["hit"]
		a.get(cached.ID, 2)
		return a.results()["hit"] > hits
	})
	b.get(cached.ID, 2)
}

// TestRedisDownAtStart: a cache whose Redis is not there serves from the
// database from the first request.
func TestRedisDownAtStart(t *testing.T) {
	t.Parallel()
	srv := cachetest.StartServer(t)
	cfg := failureConfig(t, srv)
	srv.Kill()
	w := newWorld(t, cfg, nil)
	tk := w.create("no redis")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got, err := cache.GetTask(bg, w.c, tk.ID)
			if err != nil || got.Version != 1 {
				t.Errorf("Get: %+v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if _, err := w.c.Get(bg, tk.ID); err != nil && !errors.Is(err, task.ErrNotFound) {
		t.Error(err)
	}
}

// New's one Redis call ends with the caller's context: a function told to
// stop while it starts does not wait out REDIS_TIMEOUT on a Redis that
// does not answer, and the call it gave up is not held against Redis.
func TestNewEndsWithItsContext(t *testing.T) {
	t.Parallel()
	// Connections complete in the kernel's backlog; nothing ever answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	cfg := cachetest.Config(t, "redis://"+ln.Addr().String()+"/0")
	// Far beyond the bound below: only the context can end New in time.
	cfg.Timeout = time.Minute
	cfg.BreakerFailures = 1
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	reg := prometheus.NewRegistry()
	start := time.Now()
	c, err := cache.New(ctx, cfg, cache.Loaders{Replica: noLoad, Primary: noLoad}, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("New took %s with a context of 100ms", d)
	}
	if s := metricstest.Value(t, reg, "taskfn_cache_breaker_state"); s != 0 {
		t.Errorf("breaker state %v after New's context ended, want 0 (closed)", s)
	}
}
