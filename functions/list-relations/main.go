// Command list-relations is the Knative function behind GET /tasks/{id}/relations.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
)

const name = "list-relations"

// settings: who may relate or see a task comes from the task cache (its
// project and assignee); the relations from the database.
type settings struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Cache     cache.Config
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
	c, err := cache.Open(ctx, b, cfg.Cache, store)
	if err != nil {
		return err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	route, err := taskapi.ListRelationsRoute(gate, taskapi.Relations{DB: b.DB, Store: store, Cache: c, Roles: roles})
	if err != nil {
		return err
	}
	return b.Serve(ctx, route)
}
