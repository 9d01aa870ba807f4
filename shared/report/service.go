package report

import (
	"context"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the report functions read. The ones that publish
// (request-report, build-report) add Kafka (kafka.Config) in their main.
type Config struct {
	function.Config
	Auth   auth.Config
	Worker WorkerConfig
	Limits Limits
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

// Open wires the report routes and sink on a new Base, without a
// publisher: events wait in the outbox for relay-outbox.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) { return Wire(b, cfg) })
}

// Wire wires the report routes and sink on b; opts configure the store
// (its publisher and topic).
func Wire(b *function.Base, cfg Config, opts ...Option) (*Service, error) {
	store, err := NewStore(b.DB, opts...)
	if err != nil {
		return nil, err
	}
	gate, err := b.Gate(cfg.Auth, task.Anyone...)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(gate, store, cfg.Limits)
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
