package cleanup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the cleanup function's configuration.
type Config struct {
	function.Config
	Sender    auth.SenderConfig
	Retention Retention
	// The task cache, shared with the task functions: retention's
	// deletes tombstone their entries.
	Cache cache.Config
}

// Handler runs the cleaner on every CloudEvent POSTed to it (a PingSource
// tick) and answers 200 with what it deleted; 503 when the database
// cannot be reached, so the tick is retried.
type Handler struct {
	cleaner *Cleaner
	now     func() time.Time
}

// NewHandler returns the tick handler of c.
func NewHandler(c *Cleaner) (*Handler, error) {
	if c == nil {
		return nil, errors.New("cleanup: NewHandler needs a cleaner")
	}
	return &Handler{cleaner: c, now: time.Now}, nil
}

// Route is the handler's route: ticks are POSTed to /.
func (h *Handler) Route() httpx.Route {
	return httpx.Route{Name: "cleanup", Method: http.MethodPost, Path: "/", Handler: h}
}

// ServeHTTP runs the cleaner once per tick; its failure maps as for any
// route (httpx.ProblemOf): a database that is busy or unreachable, a
// deadlock included, is a 503 and the tick is retried.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	events.TickHandler("cleanup", h.run).ServeHTTP(w, r)
}

func (h *Handler) run(ctx context.Context) (Result, error) { return h.cleaner.Run(ctx, h.now()) }

// Service holds what the cleanup function runs on.
type Service struct {
	*function.Base
	Handler *Handler
}

// Open wires the cleanup function; like the others it waits for nothing.
// Its task cache is the task functions' (same REDIS_URL and
// CACHE_KEY_PREFIX), opened here.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) {
		tasks, err := task.NewStore(b.DB)
		if err != nil {
			return nil, err
		}
		tc, err := cache.Open(ctx, b, cfg.Cache, tasks)
		if err != nil {
			return nil, err
		}
		return NewService(b, cfg, tc)
	})
}

// NewService wires the cleaner and its tick handler on b; the tasks it
// deletes are tombstoned in taskCache.
func NewService(b *function.Base, cfg Config, taskCache *cache.Cache) (*Service, error) {
	c, err := New(b.DB, cfg.Retention, taskCache)
	if err != nil {
		return nil, err
	}
	h, err := NewHandler(c)
	if err != nil {
		return nil, err
	}
	return &Service{Base: b, Handler: h}, nil
}
