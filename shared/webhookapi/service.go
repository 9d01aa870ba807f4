package webhookapi

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/webhook"
)

// Config is what the webhook functions read: the routes publish no event,
// so no Kafka; the webhook settings for the secret key and the URL policy.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Projects  project.ResolverConfig
	Webhook   webhook.Config
}

// deps opens what the routes run on: the store (sealing secrets with the
// configured key) and the roles.
func deps(b *function.Base, cfg Config, roles *project.Resolver) (Deps, error) {
	sealer, err := webhook.NewSealer(cfg.Webhook.SecretKey)
	if err != nil {
		return Deps{}, err
	}
	store, err := webhook.NewStore(b.DB, sealer, "", nil)
	if err != nil {
		return Deps{}, err
	}
	return Deps{Store: store, Roles: roles, Policy: cfg.Webhook.Policy()}, nil
}

// Wire wires the seven routes on b, limited by lim, deciding with roles
// (the dev runner passes the task routes').
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, roles *project.Resolver) ([]httpx.Route, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	d, err := deps(b, cfg, roles)
	if err != nil {
		return nil, err
	}
	return Routes(gate, d)
}

// Serve is the whole of a webhook function: its configuration from the
// environment, its route wired on a new Base, served until ctx ends. The
// seven functions differ only in the route.
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
	d, err := deps(b, cfg, roles)
	if err != nil {
		return err
	}
	r, err := route(gate, d)
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
