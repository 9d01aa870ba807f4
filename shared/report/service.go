package report

import (
	"context"
	"fmt"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/notify/people"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the configuration of the report functions (request-report,
// get-report, get-report-content and the build-report sink).
type Config struct {
	function.Config
	Auth auth.Config
	// Kafka: with KAFKA_BROKERS set, report events are published right
	// after commit; without, relay-outbox publishes them.
	Kafka     events.Config
	Worker    WorkerConfig
	MaxActive int `envconfig:"REPORT_MAX_ACTIVE" default:"5"`
}

// Service holds what a report function runs on: open it, Serve its
// routes, Close it.
type Service struct {
	*function.Base
	Store *Store
	API   *API
	Sink  *Sink
}

// Open wires a report function on a new Base. It waits for nothing:
// pools, Kafka and OIDC discovery connect lazily, and /readyz tells.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) { return NewService(b, cfg) })
}

// NewService wires the report API, store and worker on b.
func NewService(b *function.Base, cfg Config) (*Service, error) {
	var opts []Option
	pub, err := b.Publisher(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if pub != nil {
		opts = append(opts, WithPublisher(pub))
	}
	if cfg.Kafka.ReportsTopic != "" {
		opts = append(opts, WithTopic(cfg.Kafka.ReportsTopic))
	}
	s := &Service{Base: b}
	if s.Store, err = NewStore(b.DB, opts...); err != nil {
		return nil, err
	}
	v, err := auth.NewVerifier(cfg.Auth, nil)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	dir, err := people.New(b.DB.Primary, people.DefaultCacheSize)
	if err != nil {
		return nil, err
	}
	if s.API, err = NewAPI(s.Store, v, dir, cfg.MaxActive); err != nil {
		return nil, err
	}
	tasks, err := task.NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	worker, err := NewWorker(s.Store, tasks, cfg.Worker)
	if err != nil {
		return nil, err
	}
	s.Sink, err = NewSink(worker)
	return s, err
}
