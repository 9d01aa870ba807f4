package cleanup

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the cleanup function's configuration.
type Config struct {
	function.Config
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

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		httpx.WriteProblem(w, r, httpx.BadRequest("the request is not a CloudEvent: "+err.Error()))
		return
	}
	log := zerolog.Ctx(r.Context())
	res, err := h.cleaner.Run(r.Context(), h.now())
	if err != nil {
		var ce *pgconn.ConnectError
		if errors.As(err, &ce) || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
			log.Warn().Err(err).Interface("deleted", res).Msg("cleanup interrupted")
			p := httpx.Unavailable("the database is busy or unreachable; retry shortly")
			p.Header = http.Header{"Retry-After": {"5"}}
			httpx.WriteProblem(w, r, p)
			return
		}
		log.Error().Err(err).Interface("deleted", res).Msg("cleanup failed")
		httpx.WriteProblem(w, r, httpx.Internal())
		return
	}
	log.Info().Str("event.id", ev.ID()).Interface("deleted", res).Msg("cleanup done")
	httpx.WriteJSON(w, http.StatusOK, res)
}

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
		tc, err := cache.ForStore(ctx, cfg.Cache, tasks, b.Registry, b.Log)
		if err != nil {
			return nil, err
		}
		b.OnClose("task cache", tc.Close)
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
