package projectapi

import (
	"context"
	"io"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the project functions read.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Projects  project.ResolverConfig
}

// Service is the eight project routes wired on one base, as the dev runner
// and the tests run them; each deployed function wires only its own, with
// the same constructors, in its main.
type Service struct {
	*function.Base
	Store  *project.Store
	Roles  *project.Resolver
	Routes []httpx.Route
}

// Open wires the routes on a new Base, limited per cfg.RateLimit.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) {
		lim, err := ratelimit.Open(b, cfg.RateLimit)
		if err != nil {
			return nil, err
		}
		roles, err := project.OpenResolver(b.DB, cfg.Projects)
		if err != nil {
			return nil, err
		}
		return Wire(b, cfg, lim, roles)
	})
}

// Wire wires the routes on b, limited by lim (GET a read, the rest writes),
// deciding access with roles: a process that also serves the task routes
// (the dev runner) passes the resolver they use, so a member change made
// here is in force there at once.
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, roles *project.Resolver) (*Service, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	store, err := project.NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(gate, store, roles)
	if err != nil {
		return nil, err
	}
	return &Service{Base: b, Store: store, Roles: roles, Routes: routes}, nil
}

// Constructor is one route's constructor (CreateRoute, GetRoute, ...).
type Constructor func(*auth.Gate, *project.Store, *project.Resolver) (httpx.Route, error)

// Serve is the whole of a project function: its configuration read from
// the environment, its route wired on a new Base, served until ctx ends.
// The eight functions differ only in the route, so they share this.
func Serve(ctx context.Context, name string, route Constructor) error {
	var cfg Config
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
	store, err := project.NewStore(b.DB)
	if err != nil {
		return err
	}
	roles, err := project.NewResolver(store, cfg.Projects)
	if err != nil {
		return err
	}
	r, err := route(gate, store, roles)
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
