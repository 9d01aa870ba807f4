package report

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
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
	"github.com/taskfn/taskfn/shared/notify/people"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the configuration of the report functions (request-report,
// get-report, get-report-content and the build-report sink). Fields are
// named, so envconfig would prefix their variables; the tags' own names
// are what it reads when the prefixed name is unset, and the only names
// documented.
type Config struct {
	Server httpx.ServerConfig
	Log    logging.Config
	DB     pg.Config
	Auth   auth.Config
	// Kafka: with KAFKA_BROKERS set, report events are published right
	// after commit; without, relay-outbox publishes them.
	Kafka     events.Config
	Worker    WorkerConfig
	MaxActive int `envconfig:"REPORT_MAX_ACTIVE" default:"5"`
}

// Service holds what a report function runs on: open it, Serve its
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
	pub      *events.Publisher
}

// Open wires a report function. It waits for nothing: pools, Kafka and
// OIDC discovery connect lazily, and /readyz tells.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	log, err := logging.New(cfg.Log, name, logOut)
	if err != nil {
		return nil, err
	}
	log.Info().Interface("config", config.Describe(&cfg)).Msg("starting")
	var opts []Option
	var pub *events.Publisher
	if len(cfg.Kafka.Brokers) > 0 {
		if pub, err = events.NewPublisher(cfg.Kafka); err != nil {
			return nil, err
		}
		opts = append(opts, WithPublisher(pub))
	}
	opts = append(opts, WithTopic(cfg.Kafka.ReportsTopic))
	db, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	svc := &Service{Name: name, Config: cfg, Log: log, DB: db, pub: pub}
	if err := svc.wire(opts); err != nil {
		svc.Close()
		return nil, err
	}
	return svc, nil
}

func (s *Service) wire(opts []Option) error {
	s.Registry = metrics.NewRegistry()
	s.Registry.MustRegister(metrics.NewPoolCollector("primary", s.DB.Primary))
	if s.DB.Replica != s.DB.Primary {
		s.Registry.MustRegister(metrics.NewPoolCollector("replica", s.DB.Replica))
	}
	var err error
	if s.Store, err = NewStore(s.DB, opts...); err != nil {
		return err
	}
	v, err := auth.NewVerifier(s.Config.Auth, nil)
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	dir, err := people.New(s.DB.Primary, people.DefaultCacheSize)
	if err != nil {
		return err
	}
	if s.API, err = NewAPI(s.Store, v, dir, s.Config.MaxActive); err != nil {
		return err
	}
	tasks, err := task.NewStore(s.DB)
	if err != nil {
		return err
	}
	worker, err := NewWorker(s.Store, tasks, s.Config.Worker)
	if err != nil {
		return err
	}
	s.Sink, err = NewSink(worker)
	return err
}

// Close releases the Kafka producer and the pools.
func (s *Service) Close() {
	if s.pub != nil {
		if err := s.pub.Close(); err != nil {
			s.Log.Warn().Err(err).Msg("closing the Kafka publisher")
		}
	}
	s.DB.Close()
}

// Ready is the /readyz probe: the database answers. Kafka is left out:
// without it events wait in the outbox.
func (s *Service) Ready(ctx context.Context) error { return s.DB.Ping(ctx) }

// Serve serves routes on $PORT until ctx ends, then drains.
func (s *Service) Serve(ctx context.Context, routes ...httpx.Route) error {
	addr := net.JoinHostPort("", strconv.Itoa(s.Config.Server.Port))
	h := httpx.NewRouter(s.Log, s.Registry, s.Ready, routes...)
	return httpx.Serve(ctx, addr, h, s.Log, s.Config.Server.ShutdownTimeout)
}
