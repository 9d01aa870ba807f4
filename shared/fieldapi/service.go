package fieldapi

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is what the field functions read: the routes publish no event
// (nor do the project routes), so no Kafka.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Projects  project.ResolverConfig
}

// Wire wires the five routes on b, limited by lim (GET a read, the rest
// writes), deciding with roles (the dev runner passes the task routes', so
// a member change is in force for both at once).
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, roles *project.Resolver) ([]httpx.Route, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	store, err := field.NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	return Routes(gate, store, roles)
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
	store, err := field.NewStore(b.DB)
	if err != nil {
		return err
	}
	r, err := route(gate, store, roles)
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
