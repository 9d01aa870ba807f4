// Package taskapi is the HTTP task API: the handlers behind POST /tasks,
// GET /tasks, GET|PATCH|DELETE /tasks/{id}, and the wiring every task
// function shares (configuration, pools, token verifier, cache, events).
package taskapi

import (
	"context"
	"fmt"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/notify/people"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the configuration of every task function.
type Config struct {
	function.Config
	Auth  auth.Config
	Cache cache.Config
	// Kafka: with KAFKA_BROKERS set, a write publishes its events right
	// after commit; without, relay-outbox publishes them.
	Kafka events.Config
}

// Service holds what a task function runs on: open it, Serve its route,
// Close it.
type Service struct {
	*function.Base
	Store    *task.Store
	Verifier *auth.Verifier
	Cache    *cache.Cache
	Outbox   *outbox.Metrics
	API      *API
}

// Open wires a task function on a new Base.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) { return New(ctx, b, cfg) })
}

// New wires the task API on b: store (publishing through Kafka when it is
// configured), token verifier, people directory, task cache. Nothing waits
// for the network: Redis, Kafka and OIDC discovery connect lazily.
func New(ctx context.Context, b *function.Base, cfg Config) (*Service, error) {
	om := outbox.NewMetrics(b.Registry)
	var opts []task.Option
	if cfg.Kafka.TasksTopic != "" {
		opts = append(opts, task.WithTopic(cfg.Kafka.TasksTopic))
	}
	pub, err := b.Publisher(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	if pub != nil {
		opts = append(opts, task.WithPublisher(om.Instrument(pub)))
	}
	store, err := task.NewStore(b.DB, opts...)
	if err != nil {
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
	c, err := cache.ForStore(ctx, cfg.Cache, store, b.Registry, b.Log)
	if err != nil {
		return nil, err
	}
	b.OnClose("task cache", c.Close)
	api, err := NewAPI(store, v, c, dir)
	if err != nil {
		return nil, err
	}
	return &Service{Base: b, Store: store, Verifier: v, Cache: c, Outbox: om, API: api}, nil
}
