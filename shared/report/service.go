package report

import (
	"context"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the report functions read. The ones that publish
// (request-report, build-report) add Kafka (kafka.Config) in their main.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Worker    WorkerConfig
	Limits    Limits
	Projects  project.ResolverConfig
}

// Service is the report routes and the build-report sink wired on one
// base, as the dev runner and the tests run them; each deployed function
// wires only its own, with the same constructors, in its main.
type Service struct {
	*function.Base
	Store  *Store
	Routes []httpx.Route
	Sink   *Sink
}

// Open wires the report routes and sink on a new Base, limited per
// cfg.RateLimit, without a publisher: events wait in the outbox for
// relay-outbox.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) {
		lim, err := ratelimit.Open(b, cfg.RateLimit)
		if err != nil {
			return nil, err
		}
		return Wire(b, cfg, lim)
	})
}

// Wire wires the report routes, limited by lim as Reports whatever their
// method (nil: unlimited), and the sink on b; opts configure the store
// (its publisher and topic). It does not read cfg.RateLimit: a process
// wiring several families shares one limiter.
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, opts ...Option) (*Service, error) {
	store, err := NewStore(b.DB, opts...)
	if err != nil {
		return nil, err
	}
	gate, err := b.Gate(cfg.Auth, lim.As(ratelimit.Reports), task.Anyone...)
	if err != nil {
		return nil, err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(gate, store, roles, cfg.Limits)
	if err != nil {
		return nil, err
	}
	sink, err := OpenSink(b, cfg.Worker, store)
	if err != nil {
		return nil, err
	}
	return &Service{Base: b, Store: store, Routes: routes, Sink: sink}, nil
}

// OpenSink is the build-report sink of function b, building reports of
// store from b's tasks.
func OpenSink(b *function.Base, cfg WorkerConfig, store *Store) (*Sink, error) {
	tasks, err := task.NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	worker, err := NewWorker(store, tasks, cfg)
	if err != nil {
		return nil, err
	}
	return NewSink(worker)
}
