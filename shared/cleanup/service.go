package cleanup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
	"github.com/taskfn/taskfn/shared/pg"
)

// Config is the cleanup function's configuration. Fields are named, so
// envconfig would prefix their variables; the tags' own names are what it
// reads when the prefixed name is unset, and the only names documented.
type Config struct {
	Server    httpx.ServerConfig
	Log       logging.Config
	DB        pg.Config
	Retention Retention
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
	Config   Config
	Log      zerolog.Logger
	DB       *pg.DB
	Registry *prometheus.Registry
	Handler  *Handler
}

// Open wires the cleanup function; like the others it waits for nothing.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	log, err := logging.New(cfg.Log, name, logOut)
	if err != nil {
		return nil, err
	}
	log.Info().Interface("config", config.Describe(&cfg)).Msg("starting")
	db, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	c, err := New(db, cfg.Retention)
	if err != nil {
		db.Close()
		return nil, err
	}
	h, err := NewHandler(c)
	if err != nil {
		db.Close()
		return nil, err
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewPoolCollector("primary", db.Primary))
	return &Service{Config: cfg, Log: log, DB: db, Registry: reg, Handler: h}, nil
}

// Close releases the pools.
func (s *Service) Close() { s.DB.Close() }

// Serve serves the tick route on $PORT until ctx ends, then drains.
func (s *Service) Serve(ctx context.Context) error {
	addr := net.JoinHostPort("", strconv.Itoa(s.Config.Server.Port))
	h := httpx.NewRouter(s.Log, s.Registry, s.DB.Ping, s.Handler.Route())
	return httpx.Serve(ctx, addr, h, s.Log, s.Config.Server.ShutdownTimeout)
}
