// Package cache is the Redis read-through cache of tasks by id behind
// GET /tasks/{id}, built never to serve a task older than a write that has
// been acknowledged (docs/cache.md lists the limits of that promise).
//
// Reads check Redis and, on a miss, load from PostgreSQL once per process
// per key and place the result. Writers refresh the entry after their
// commit. Every placement goes through one Lua script that compares
// versions (a negative entry is version 0, a tombstone above every live
// version), the generation the caller saw before it touched the database,
// and a deadline on the server clock; see setScript for the rules and
// docs/cache.md for why they suffice and what they do not cover.
//
// Redis is optional for correctness: a failed, slow or skipped Redis call
// (the circuit breaker opens after repeated failures) falls back to the
// primary database pool, which holds every acknowledged write. A writer
// that could not refresh its entry makes its process start a new
// generation, dropping every entry, as soon as Redis answers again; until
// then that process reads only from the primary.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/singleflight"

	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/redisx"
	"github.com/taskfn/taskfn/shared/task"
)

// Loader reads one task from PostgreSQL, task.ErrNotFound if there is none.
type Loader func(ctx context.Context, id uuid.UUID) (task.Task, error)

// Loaders are the two ways to read a task.
type Loaders struct {
	// Replica serves ordinary misses; it may lag behind the primary, which
	// the version checks make harmless.
	Replica Loader
	// Primary serves every read the cache cannot vouch for: Redis failed or
	// skipped, a refresh of this process pending, or the window after an
	// invalidation.
	Primary Loader
}

// Cache is the task cache. Its methods are safe for concurrent use.
type Cache struct {
	cfg  Config
	load Loaders
	log  zerolog.Logger
	m    *instruments

	rdb     *redis.Client // nil in disabled mode
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	flights singleflight.Group

	entryPrefix, genKey, windowKey string
	maxSetAge                      int64 // ms

	// need counts refreshes that failed since the last invalidation; while
	// it is not zero this process does not trust Redis.
	need      atomic.Uint64
	kick      chan struct{}
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// New returns the cache described by cfg, registering its metrics on reg.
// It makes one Redis call, bounded by REDIS_TIMEOUT and by ctx, to start
// the generation if there is none; a Redis that is down does not fail it.
func New(ctx context.Context, cfg Config, load Loaders, reg prometheus.Registerer, log zerolog.Logger) (*Cache, error) {
	if load.Replica == nil || load.Primary == nil || reg == nil {
		return nil, errors.New("cache: New needs both loaders and a registry")
	}
	opts, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	m, err := newInstruments(reg, "task")
	if err != nil {
		return nil, fmt.Errorf("cache: metrics: %w", err)
	}
	c := &Cache{cfg: cfg, load: load, log: log.With().Str("component", "cache").Logger(), m: m}
	if !cfg.Enabled {
		return c, nil
	}
	c.rdb = redisx.NewClient(opts, cfg.Timeout, cfg.PoolSize)

	c.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "redis",
		MaxRequests: cfg.BreakerProbes,
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= cfg.BreakerFailures },
		// An error reply (out of memory, loading) came from a Redis that
		// answers quickly: only timeouts and broken connections trip.
		IsSuccessful: func(err error) bool { return err == nil || answered(err) },
		IsExcluded:   func(err error) bool { return errors.Is(err, errCallerGone) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breaker.Set(redisx.BreakerValue(to))
			c.log.Warn().Str("from", from.String()).Str("to", to.String()).Msg("redis circuit breaker")
		},
	})
	c.entryPrefix = cfg.KeyPrefix + "task:"
	c.genKey = cfg.KeyPrefix + "task-generation"
	c.windowKey = cfg.KeyPrefix + "task-primary-window"
	c.maxSetAge = cfg.maxSetAge().Milliseconds()
	c.kick = make(chan struct{}, 1)
	c.stop = make(chan struct{})
	c.stopped = make(chan struct{})
	// Without a generation no entry can be stored (see setScript); start
	// one now rather than losing the first miss. Also dials the first
	// connection before the first request needs it. A function told to
	// stop meanwhile does not wait for it.
	if err := c.callUntil(ctx, opSet, func(ctx context.Context) error {
		return c.rdb.SetNX(ctx, c.genKey, newGeneration(), 0).Err()
	}); err != nil {
		c.log.Warn().Err(err).Msg("redis unavailable at start; reading from the database until it answers")
	}
	go c.repairLoop()
	return c, nil
}

// ForStore is New with store's two reads as the loaders: the cache every
// function that reads or writes tasks opens, so all of them share one
// generation and one key layout.
func ForStore(ctx context.Context, cfg Config, store *task.Store, reg prometheus.Registerer, log zerolog.Logger) (*Cache, error) {
	return New(ctx, cfg, Loaders{Replica: store.Get, Primary: store.GetPrimary}, reg, log)
}

// Open is ForStore for function b: on its registry and logger, and closed
// with it.
func Open(ctx context.Context, b *function.Base, cfg Config, store *task.Store) (*Cache, error) {
	c, err := ForStore(ctx, cfg, store, b.Registry, b.Log)
	if err != nil {
		return nil, err
	}
	b.OnClose("task cache", c.Close)
	return c, nil
}

// Close stops the cache. A process that still owes an invalidation makes
// one last attempt, so a clean shutdown leaves nothing stale behind.
func (c *Cache) Close() error {
	if c.rdb == nil {
		return nil
	}
	var err error
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.stopped
		if c.need.Load() > 0 {
			if ierr := c.invalidate(context.Background()); ierr != nil {
				c.log.Error().Err(ierr).Msg("could not invalidate the task cache after failed refreshes; entries older than acknowledged writes may be served until they expire (CACHE_TTL)")
			}
		}
		err = c.rdb.Close()
	})
	return err
}

// Entry is a task as the cache holds it: the JSON the API answers with,
// and what authorization and the ETag read, so a hit is served without
// decoding anything. Entries may be shared between callers: JSON must not
// be modified.
type Entry struct {
	Project    string
	AssigneeID *string
	Version    int64
	JSON       []byte // task.Task.AppendJSON's bytes
}

// NewEntry encodes t.
func NewEntry(t *task.Task) Entry {
	return Entry{Project: t.Project, AssigneeID: t.AssigneeID, Version: t.Version, JSON: t.AppendJSON(make([]byte, 0, 512))}
}

// Get returns the task with id, task.ErrNotFound if there is none.
// Authorization is the caller's business: the cache holds tasks, never
// decisions.
func (c *Cache) Get(ctx context.Context, id uuid.UUID) (Entry, error) {
	if c.rdb == nil {
		return loadEntry(ctx, c.load.Replica, id)
	}
	if c.need.Load() > 0 {
		// This process acknowledged a write it could not refresh: until an
		// invalidation covers it, Redis may hold what that write replaced.
		c.kickRepair()
		return c.fallback(ctx, id)
	}
	key := c.entryPrefix + id.String()
	var vals []any
	err := c.call(ctx, opGet, func(ctx context.Context) error {
		var err error
		vals, err = c.rdb.MGet(ctx, key, c.genKey, c.windowKey).Result()
		return err
	})
	if err != nil || len(vals) != 3 {
		c.log.Debug().Err(err).Msg("cache read failed")
		return c.fallback(ctx, id)
	}
	entry, _ := vals[0].(string)
	gen, _ := vals[1].(string)
	var poison string
	if gen != "" && len(entry) > len(gen)+1 && entry[:len(gen)] == gen && entry[len(gen)] == ' ' {
		if k := entry[len(gen)+1]; k == kindPoison || k == kindTaskV1 {
			poison = entry[len(gen)+1:]
		} else {
			e, found, err := decode(entry)
			if err != nil {
				c.log.Error().Err(err).Str("key", key).Msg("unreadable cache entry")
				return c.fallback(ctx, id)
			}
			if !found {
				c.m.results[resultNegativeHit].Inc()
				return Entry{}, task.ErrNotFound
			}
			c.m.results[resultHit].Inc()
			return e, nil
		}
	}
	// A miss: note the generation and the server time before loading.
	s, err := c.observe(ctx)
	if err != nil {
		c.log.Debug().Err(err).Msg("cache read failed")
		return c.fallback(ctx, id)
	}
	// An invalidation between the two calls may have opened the window.
	s.window = s.window || vals[2] != nil || s.gen != gen
	s.poison = poison
	c.m.results[resultMiss].Inc()
	return c.readThrough(ctx, id, key, s)
}

// seen is what a caller learnt from Redis before touching the database,
// and must present when it places a value.
type seen struct {
	gen      string
	window   bool   // an invalidation was recent: load from the primary
	poison   string // a poisoned entry's kind and version, "" if none: load from the primary
	deadline int64  // server ms after which the value may no longer be placed
}

// observe runs the observe script.
func (c *Cache) observe(ctx context.Context) (seen, error) {
	var s seen
	err := c.call(ctx, opObserve, func(ctx context.Context) error {
		v, err := observeScript.Run(ctx, c.rdb, []string{c.genKey, c.windowKey}).Slice()
		if err != nil {
			return err
		}
		var ok bool
		if s, ok = parseSeen(v, c.maxSetAge); !ok {
			return fmt.Errorf("cache: unexpected observe reply %v", v)
		}
		return nil
	})
	return s, err
}

// parseSeen reads the observe script's {generation, window, now}.
func parseSeen(v []any, maxAge int64) (seen, bool) {
	if len(v) != 3 {
		return seen{}, false
	}
	gen, ok1 := v[0].(string)
	w, ok2 := v[1].(int64)
	now, ok3 := v[2].(int64)
	return seen{gen: gen, window: w == 1, deadline: now + maxAge}, ok1 && ok2 && ok3
}

// loaded is the outcome of one shared load.
type loaded struct {
	e     Entry
	start time.Time
}

// loadEntry loads a task and encodes it.
func loadEntry(ctx context.Context, load Loader, id uuid.UUID) (Entry, error) {
	t, err := load(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	return NewEntry(&t), nil
}

// readThrough loads a missed task once per process and places it.
//
// Joining a load another request started is only safe if that load cannot
// predate a write acknowledged before this caller looked: the flight is
// keyed by generation, pool and poison, so a caller never joins a load
// begun before an invalidation or a poisoning it has seen; and a load
// older than the set deadline is not joined, since every entry a write
// leaves (value, poison, tombstone) outlives that, so a miss on it cannot
// be that recent.
func (c *Cache) readThrough(ctx context.Context, id uuid.UUID, key string, s seen) (Entry, error) {
	load, pool := c.load.Replica, poolReplica
	if s.window || s.poison != "" {
		load, pool = c.load.Primary, poolPrimary
	}
	joined := time.Now()
	ch := c.flights.DoChan(key+"|"+s.gen+"|"+pool+"|"+s.poison, func() (any, error) {
		start := time.Now()
		// The load belongs to every caller waiting on it, not to the first.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LoadTimeout)
		defer cancel()
		c.m.loads[pool].Inc()
		e, err := loadEntry(ctx, load, id)
		switch {
		case err == nil:
			c.place(ctx, key, s, kindTask, e.Version, &e, c.ttl())
		case errors.Is(err, task.ErrNotFound):
			c.place(ctx, key, s, kindNegative, 0, nil, c.cfg.NegativeTTL)
		}
		return loaded{e: e, start: start}, err
	})
	select {
	case r := <-ch:
		l, _ := r.Val.(loaded)
		if r.Shared && joined.Sub(l.start) > c.cfg.maxSetAge() {
			c.m.loads[poolPrimary].Inc()
			return loadEntry(ctx, c.load.Primary, id)
		}
		return l.e, r.Err
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
}

// place stores what a reader loaded, if the set script agrees it cannot
// make the cache older. Failing is harmless: the value is just not cached.
func (c *Cache) place(ctx context.Context, key string, s seen, kind byte, version int64, e *Entry, ttl time.Duration) {
	v := encode(kind, version, e)
	err := c.call(ctx, opSet, func(ctx context.Context) error {
		return setScript.Run(ctx, c.rdb, []string{key, c.genKey, c.windowKey},
			s.gen, s.deadline, version, v, ttl.Milliseconds(), 0, newGeneration()).Err()
	})
	if err != nil {
		c.log.Debug().Err(err).Msg("cache entry not stored")
	}
}

// fallback reads from the primary, which has every acknowledged write.
// Such loads are not shared: a load that began before another process's
// write was acknowledged could be joined after it, and nothing in Redis
// can tell.
func (c *Cache) fallback(ctx context.Context, id uuid.UUID) (Entry, error) {
	c.m.results[resultError].Inc()
	c.m.loads[poolPrimary].Inc()
	return loadEntry(ctx, c.load.Primary, id)
}

// call runs one Redis operation under the breaker and REDIS_TIMEOUT. The
// caller's cancellation is ignored: the call is short, and a client that
// hangs up must not count as a Redis failure.
func (c *Cache) call(ctx context.Context, op string, fn func(context.Context) error) error {
	return c.callUntil(context.WithoutCancel(ctx), op, fn)
}

// callUntil is call ending also when ctx ends. A call cut short by ctx
// tells nothing about Redis: the breaker counts it neither way.
func (c *Cache) callUntil(ctx context.Context, op string, fn func(context.Context) error) error {
	done, err := c.breaker.Allow()
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	start := time.Now()
	err = fn(tctx)
	c.m.durations[op].Observe(time.Since(start).Seconds())
	cancel()
	if err != nil && ended(ctx) {
		err = fmt.Errorf("%w: %w", errCallerGone, err)
	}
	done(err)
	return err
}

// errCallerGone marks a Redis call its caller's context ended.
var errCallerGone = errors.New("cache: the caller stopped waiting")

// ended reports whether ctx has ended. Its deadline counts as soon as it
// passes: the connection's deadline, set from it, may fire before the
// context's own timer does.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// answered reports whether err is a reply from Redis rather than a
// failure to reach it.
func answered(err error) bool {
	var reply redis.Error
	return errors.Is(err, redis.Nil) || errors.As(err, &reply)
}

// ttl is CACHE_TTL with its jitter applied.
func (c *Cache) ttl() time.Duration {
	j := float64(c.cfg.TTLJitter)
	if j == 0 {
		return c.cfg.TTL
	}
	return max(time.Millisecond, time.Duration(float64(c.cfg.TTL)*(1+j*(2*rand.Float64()-1))))
}

// newGeneration is a fresh generation value; 64 random bits make reuse,
// which could revive entries of an old generation, implausible.
func newGeneration() string { return strconv.FormatUint(rand.Uint64(), 36) }

// lost records a write whose entry could not be refreshed.
func (c *Cache) lost(err error) {
	if c.need.Add(1) == 1 {
		c.log.Warn().Err(err).Msg("task cache refresh failed; reading from the primary until the cache is invalidated")
	}
	c.kickRepair()
}

func (c *Cache) kickRepair() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// repairLoop invalidates the cache after failed refreshes, retrying until
// Redis takes it. It does not ask the breaker: one call per interval is
// cheap, and it finds Redis back as soon as possible.
func (c *Cache) repairLoop() {
	defer close(c.stopped)
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		for {
			n := c.need.Load()
			if n == 0 {
				break
			}
			err := c.invalidate(context.Background())
			if err == nil {
				// Failures counted after n may postdate the new generation.
				if c.need.CompareAndSwap(n, 0) {
					c.log.Info().Uint64("failed_refreshes", n).Msg("task cache invalidated; using it again")
					break
				}
				continue
			}
			c.log.Debug().Err(err).Msg("task cache invalidation failed; retrying")
			select {
			case <-c.stop:
				return
			case <-time.After(c.cfg.RepairInterval):
			}
		}
	}
}

// invalidate starts a new generation, which drops every entry at once.
func (c *Cache) invalidate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := invalidateScript.Run(ctx, c.rdb, []string{c.genKey, c.windowKey}, newGeneration(), c.cfg.PrimaryWindow.Milliseconds()).Err()
	c.m.durations[opInvalidate].Observe(time.Since(start).Seconds())
	if err == nil {
		c.m.invalidations.Inc()
	}
	return err
}
