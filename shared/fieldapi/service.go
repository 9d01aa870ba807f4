package fieldapi

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the field functions read: the routes publish no event
// (nor do the project routes), so no Kafka; the task cache's settings for
// the two that refresh it.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Projects  project.ResolverConfig
	Cache     cache.Config
}

// Wire wires the five routes on b, limited by lim (GET a read, the rest
// writes), deciding with roles and refreshing taskCache (the dev runner
// passes the task routes' resolver and cache, so a member change is in
// force for both at once and a rename is seen by their next GET).
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, roles *project.Resolver, taskCache *cache.Cache) ([]httpx.Route, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	store, err := field.NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	return Routes(gate, Deps{Store: store, Roles: roles, Cache: taskCache})
}

// Serve is the whole of a field function: its configuration from the
// environment, its route wired on a new Base, served until ctx ends. The
// five functions differ only in the route.
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
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	d := Deps{Roles: roles}
	if d.Store, err = field.NewStore(b.DB); err != nil {
		return err
	}
	if route.NeedsCache {
		tasks, err := task.NewStore(b.DB)
		if err != nil {
			return err
		}
		if d.Cache, err = cache.Open(ctx, b, cfg.Cache, tasks); err != nil {
			return err
		}
	}
	r, err := route.Build(gate, d)
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
