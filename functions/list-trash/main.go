// Command list-trash is the Knative function behind GET /trash.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
)

const name = "list-trash"

// settings: the trash is read from the database (the replica, when set); no cache, no Kafka.
type settings struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Projects  project.ResolverConfig
}

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg settings
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
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	route, err := taskapi.TrashRoute(gate, store, roles)
	if err != nil {
		return err
	}
	return b.Serve(ctx, route)
}
