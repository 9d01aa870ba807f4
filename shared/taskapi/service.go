package taskapi

import (
	"context"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the task functions read: the base, token verification
// and the task cache. The writers add Kafka (kafka.Config) in their main.
type Config struct {
	function.Config
	Auth  auth.Config
	Cache cache.Config
}

// Service is all five task routes wired on one base, as the dev runner and
// the tests run them; each deployed function wires only its own route,
// with the same constructors, in its main.
type Service struct {
	*function.Base
	Store  *task.Store
	Cache  *cache.Cache
	Routes []httpx.Route
}

// Open wires the five routes on a new Base, without a publisher: events
// wait in the outbox for relay-outbox.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) { return Wire(ctx, b, cfg) })
}

// Wire wires the five routes on b; opts configure the store (its publisher
// and topic).
func Wire(ctx context.Context, b *function.Base, cfg Config, opts ...task.Option) (*Service, error) {
	gate, err := b.Gate(cfg.Auth, task.Anyone...)
	if err != nil {
		return nil, err
	}
	store, err := task.NewStore(b.DB, opts...)
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(ctx, b, cfg.Cache, store)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(gate, store, c)
	if err != nil {
		return nil, err
	}
	return &Service{Base: b, Store: store, Cache: c, Routes: routes}, nil
}
