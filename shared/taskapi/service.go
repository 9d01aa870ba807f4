package taskapi

import (
	"context"
	"io"
	"os"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the task functions read: the base, token verification,
// rate limits and the task cache. The writers add Kafka (kafka.Config) in
// their main.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Cache     cache.Config
	Projects  project.ResolverConfig
}

// Service is all ten task routes wired on one base, as the dev runner and
// the tests run them; each deployed function wires only its own route,
// with the same constructors, in its main.
type Service struct {
	*function.Base
	Store  *task.Store
	Cache  *cache.Cache
	Roles  *project.Resolver
	Routes []httpx.Route
}

// Open wires the ten routes on a new Base, limited per cfg.RateLimit,
// without a publisher: events wait in the outbox for relay-outbox.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) {
		lim, err := ratelimit.Open(b, cfg.RateLimit)
		if err != nil {
			return nil, err
		}
		return Wire(ctx, b, cfg, lim)
	})
}

// Wire wires the ten routes on b, limited by lim (nil: unlimited; GET is
// a read, the rest writes); opts configure the store (its publisher and
// topic). It does not read cfg.RateLimit: a process wiring several
// families on one base (the dev runner) shares one limiter.
func Wire(ctx context.Context, b *function.Base, cfg Config, lim *ratelimit.Limiter, opts ...task.Option) (*Service, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
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
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return nil, err
	}
	hist, err := activity.NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(gate, store, c, roles, hist)
	if err != nil {
		return nil, err
	}
	rel := Relations{DB: b.DB, Store: store, Cache: c, Roles: roles}
	for _, r := range []RelationRoute{CreateRelationRoute, ListRelationsRoute, DeleteRelationRoute} {
		route, err := r(gate, rel)
		if err != nil {
			return nil, err
		}
		routes = append(routes, route)
	}
	return &Service{Base: b, Store: store, Cache: c, Roles: roles, Routes: routes}, nil
}

// RelationRoute is one relation route's constructor.
type RelationRoute func(*auth.Gate, Relations) (httpx.Route, error)

// ServeRelation is the whole of a relation function: its configuration
// from the environment, its route wired on a new Base with the task cache
// (who may relate or see a task) and the database, served until ctx ends.
// The three functions differ only in the route.
func ServeRelation(ctx context.Context, name string, route RelationRoute) error {
	var cfg struct {
		function.Config
		Auth      auth.Config
		RateLimit ratelimit.Config
		Cache     cache.Config
		Projects  project.ResolverConfig
	}
	if err := config.Load(&cfg); err != nil {
		return err
	}
	b, err := function.Open(ctx, name, cfg.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	lim, err := ratelimit.Open(b, cfg.RateLimit)
	if err != nil {
		return err
	}
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return err
	}
	store, err := task.NewStore(b.DB)
	if err != nil {
		return err
	}
	c, err := cache.Open(ctx, b, cfg.Cache, store)
	if err != nil {
		return err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	r, err := route(gate, Relations{DB: b.DB, Store: store, Cache: c, Roles: roles})
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
