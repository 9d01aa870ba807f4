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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/task"
)

// failureConfig is tuned so failures show quickly: a tight timeout, a
// breaker that opens after 3 failures and probes after a second.
func failureConfig(t *testing.T, srv *cachetest.Server) cache.Config {
	cfg := cachetest.Config(t, srv.URL())
	cfg.Timeout = 50 * time.Millisecond
	cfg.BreakerFailures = 3
	cfg.BreakerCooldown = time.Second
	cfg.RepairInterval = 20 * time.Millisecond
	return cfg
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
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
			a.get(tk.ID, 1)
			b.get(tk.ID, 1)
			if a.results()["hit"] != 1 || b.results()["hit"] != 1 {
				t.Fatalf("not cached before the crash: a %v, b %v", a.results(), b.results())
			}

			srv.Kill()
			// Every request is served, from the primary; the breaker opens
			// after BreakerFailures failed calls.
			for range cfg.BreakerFailures {
				start := time.Now()
				a.get(tk.ID, 1)
				if d := time.Since(start); d > cfg.Timeout+time.Second {
					t.Errorf("a request with Redis down took %s", d)
				}
			}
			if s := a.gauge("taskfn_cache_breaker_state"); s != 2 {
				t.Fatalf("breaker state %v after %d failures, want 2 (open)", s, cfg.BreakerFailures)
			}
			// Open: no Redis round trip at all, so no timeout to pay.
			calls, primary := a.redisCalls("get"), a.primary.Load()
			start := time.Now()
			for range 100 {
				a.get(tk.ID, 1)
			}
			// Counted, not timed: a loaded machine must not decide this.
			if elapsed := time.Since(start); elapsed < cfg.BreakerCooldown && a.redisCalls("get") != calls {
				t.Errorf("%d Redis reads with the breaker open", a.redisCalls("get")-calls)
			}
			if a.primary.Load() != primary+100 {
				t.Errorf("%d primary loads for 100 requests", a.primary.Load()-primary)
			}

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
			eventually(t, "hits on a to resume", func() bool {
				hits := a.results()["hit"]
				a.get(tk.ID, 2)
				return a.results()["hit"] > hits
			})
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

// TestSlowRedis stalls the test's own Redis while requests run: each
// request is bounded by the timeout, then by the breaker, and a write made
// during the stall is not undone by the stale entry when Redis recovers.
func TestSlowRedis(t *testing.T) {
	t.Parallel()
	const stall = 1500 * time.Millisecond
	tests := []struct {
		name  string
		stall func(ctx context.Context, srv *cachetest.Server) error
	}{
		{"DEBUG SLEEP", func(ctx context.Context, srv *cachetest.Server) error {
			return cachetest.Client(t, srv.URL()).Do(ctx, "DEBUG", "SLEEP", fmt.Sprint(stall.Seconds())).Err()
		}},
		{"CLIENT PAUSE", func(ctx context.Context, srv *cachetest.Server) error {
			return cachetest.Client(t, srv.URL()).ClientPause(ctx, stall).Err()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := cachetest.StartServer(t, "--enable-debug-command", "local")
			cfg := failureConfig(t, srv)
			a := newWorld(t, cfg, nil)
			b := newWorldOn(t, cfg, a.store, nil)
			tk := a.create("before the stall")
			a.get(tk.ID, 1)
			b.get(tk.ID, 1)

			stalled := make(chan error, 1)
			go func() { stalled <- tc.stall(context.Background(), srv) }()
			time.Sleep(100 * time.Millisecond) // let the stall begin
			began := time.Now()

			var worst time.Duration
			for range 10 {
				start := time.Now()
				a.get(tk.ID, 1)
				worst = max(worst, time.Since(start))
			}
			// Under -race and a busy machine the database read itself may
			// take a while; the point is that no request waits for Redis.
			if worst > cfg.Timeout+250*time.Millisecond {
				t.Errorf("slowest request during the stall took %s (timeout %s)", worst, cfg.Timeout)
			}
			if s := a.gauge("taskfn_cache_breaker_state"); s != 2 {
				t.Errorf("breaker state %v during the stall, want 2 (open)", s)
			}
			up := a.update(tk.ID, "during the stall")
			a.get(tk.ID, 2)
			if time.Since(began) > stall-200*time.Millisecond {
				t.Log("the stall ended before the write; the test proves less")
			}

			if err := <-stalled; err != nil && !strings.Contains(err.Error(), "timeout") {
				t.Logf("stall command: %v", err)
			}
			eventually(t, "a to use the cache again", func() bool {
				hits := a.results()["hit"]
				a.get(tk.ID, 2)
				return a.results()["hit"] > hits
			})
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
	a.get(cached.ID, 1)

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
	loads := a.replica.Load()
	a.get(fresh.ID, 1)
	a.get(fresh.ID, 1)
	if a.replica.Load() != loads+2 {
		t.Errorf("%d loads for two reads of an uncacheable task", a.replica.Load()-loads)
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
	cfg.Timeout = 10 * time.Second
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
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("New took %s with a context of 100ms", d)
	}
	if s := metricstest.Value(t, reg, "taskfn_cache_breaker_state"); s != 0 {
		t.Errorf("breaker state %v after New's context ended, want 0 (closed)", s)
	}
}
