package notify

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
	"github.com/taskfn/taskfn/shared/notify/people"
	"github.com/taskfn/taskfn/shared/pg"
)

// Config is the configuration of the notify functions (the sink and the
// two inbox routes). Fields are named, so envconfig would prefix their
// variables; the tags' own names are what it reads when the prefixed name
// is unset, and the only names documented.
type Config struct {
	Server httpx.ServerConfig
	Log    logging.Config
	DB     pg.Config
	Auth   auth.Config
	SMTP   SMTPConfig
}

// Service holds what a notify function runs on: open it, Serve its
// routes, Close it.
type Service struct {
	Name     string
	Config   Config
	Log      zerolog.Logger
	DB       *pg.DB
	Registry *prometheus.Registry
	Store    *Store
	API      *API
	Sink     *Sink
}

// Open wires a notify function. Like the task functions it waits for
// nothing: pools and OIDC discovery connect lazily, and /readyz tells.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	log, err := logging.New(cfg.Log, name, logOut)
	if err != nil {
		return nil, err
	}
	log.Info().Interface("config", config.Describe(&cfg)).Msg("starting")
	sender, err := NewSender(cfg.SMTP)
	if err != nil {
		return nil, err
	}
	db, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	svc, err := wire(name, cfg, log, db, sender)
	if err != nil {
		db.Close()
		return nil, err
	}
	return svc, nil
}

func wire(name string, cfg Config, log zerolog.Logger, db *pg.DB, sender *Sender) (*Service, error) {
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewPoolCollector("primary", db.Primary))
	if db.Replica != db.Primary {
		reg.MustRegister(metrics.NewPoolCollector("replica", db.Replica))
	}
	store, err := NewStore(db)
	if err != nil {
		return nil, err
	}
	v, err := auth.NewVerifier(cfg.Auth, nil)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	dir, err := people.New(db.Primary, people.DefaultCacheSize)
	if err != nil {
		return nil, err
	}
	api, err := NewAPI(store, v, dir)
	if err != nil {
		return nil, err
	}
	sink, err := NewSink(store, sender)
	if err != nil {
		return nil, err
	}
	if sender == nil {
		log.Info().Msg("SMTP_ADDR is empty: notifications go to the inbox only")
	}
	return &Service{Name: name, Config: cfg, Log: log, DB: db, Registry: reg, Store: store, API: api, Sink: sink}, nil
}

// Close releases the pools.
func (s *Service) Close() { s.DB.Close() }

// Ready is the /readyz probe: the database answers.
func (s *Service) Ready(ctx context.Context) error { return s.DB.Ping(ctx) }

// Serve serves routes on $PORT until ctx ends, then drains.
func (s *Service) Serve(ctx context.Context, routes ...httpx.Route) error {
	addr := net.JoinHostPort("", strconv.Itoa(s.Config.Server.Port))
	h := httpx.NewRouter(s.Log, s.Registry, s.Ready, routes...)
	return httpx.Serve(ctx, addr, h, s.Log, s.Config.Server.ShutdownTimeout)
}
