// Command purge-task is the Knative function behind DELETE /trash/{id}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
)

const name = "purge-task"

// settings: the task functions' own, and Kafka, through which a write's
// events go out right after commit (without brokers relay-outbox sends them).
type settings struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Cache     cache.Config
	Kafka     kafka.Config
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
	pub, err := kafka.Open(b, cfg.Kafka, outbox.NewMetrics(b.Registry))
	if err != nil {
		return err
	}
	store, err := task.NewStore(b.DB, task.WithTopic(cfg.Kafka.TasksTopic), task.WithPublisher(pub))
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
	route, err := taskapi.PurgeRoute(gate, store, c, roles)
	if err != nil {
		return err
	}
	return b.Serve(ctx, route)
}
