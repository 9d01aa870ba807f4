// Package taskapi is the HTTP task API: the handlers behind POST /tasks,
// GET /tasks, GET|PATCH|DELETE /tasks/{id}, and the wiring every task
// function shares (configuration, pools, token verifier, router).
package taskapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the configuration of every task function.
// Fields are named, so envconfig would prefix their variables (DB_...); the
// tags' own names are what it reads when the prefixed name is unset, and the
// only names documented.
type Config struct {
	Server httpx.ServerConfig
	Log    logging.Config
	DB     pg.Config
	Auth   auth.Config
	Cache  cache.Config
}

// Service holds what a task function runs on. Open it, mount routes with
// Handler, Serve, Close.
type Service struct {
	Name     string
	Config   Config
	Log      zerolog.Logger
	DB       *pg.DB
	Store    *task.Store
	Verifier *auth.Verifier
	Cache    *cache.Cache
	Registry *prometheus.Registry
	API      *API
}

// Open wires a function: logger, database pools (and their metrics), store,
// token verifier, task cache. Nothing here waits for the network: pools,
// Redis and OIDC discovery connect lazily, so a cold start is fast and
// /readyz tells.
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
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewPoolCollector("primary", db.Primary))
	if db.Replica != db.Primary {
		reg.MustRegister(metrics.NewPoolCollector("replica", db.Replica))
	}
	store, err := task.NewStore(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	v, err := auth.NewVerifier(cfg.Auth, nil)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	c, err := cache.New(cfg.Cache, cache.Loaders{Replica: store.Get, Primary: store.GetPrimary}, reg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	api, err := NewAPI(store, v, c)
	if err != nil {
		_ = c.Close()
		db.Close()
		return nil, err
	}
	return &Service{Name: name, Config: cfg, Log: log, DB: db, Store: store, Verifier: v, Cache: c, Registry: reg, API: api}, nil
}

// Close releases the cache, then the pools.
func (s *Service) Close() {
	if err := s.Cache.Close(); err != nil {
		s.Log.Warn().Err(err).Msg("closing the task cache")
	}
	s.DB.Close()
}

// Ready is the /readyz probe: both pools answer. Redis is left out on
// purpose: without it reads fall back to the database, so a Redis outage
// must not take every pod out of service.
func (s *Service) Ready(ctx context.Context) error { return s.DB.Ping(ctx) }

// Handler mounts routes beside /healthz, /readyz and /metrics.
func (s *Service) Handler(routes ...httpx.Route) http.Handler {
	return httpx.NewRouter(s.Log, s.Registry, s.Ready, routes...)
}

// Serve serves routes on $PORT until ctx ends, then drains.
func (s *Service) Serve(ctx context.Context, routes ...httpx.Route) error {
	addr := net.JoinHostPort("", strconv.Itoa(s.Config.Server.Port))
	return httpx.Serve(ctx, addr, s.Handler(routes...), s.Log, s.Config.Server.ShutdownTimeout)
}

var errMissing = errors.New("taskapi: missing dependency")
