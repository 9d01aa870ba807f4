// Command ingest-events takes commands from producers: POST /events
// (CloudEvents dev.taskfn.command.*, binary, structured or batched, with a
// Keycloak token) and POST /events/alertmanager (Alertmanager's webhook)
// through the gateway, and the same commands from the taskfn.commands
// topic through a KafkaSource at POST /kafka (kafka-sources/ingest-events.yaml).
// See docs/producers.md.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

func main() { os.Exit(lifecycle.Run(ingest.Name, run)) }

func run(ctx context.Context) error {
	var cfg ingest.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	b, err := function.Open(ctx, ingest.Name, cfg.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	lim, err := ratelimit.Open(b, cfg.RateLimit)
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
	svc, err := ingest.Wire(b, cfg, lim, store, c, roles, pub)
	if err != nil {
		return err
	}
	// The sink answers only Knative's sources (sender identity); the
	// gateway routes /events and /events/alertmanager, never /kafka.
	return b.ServeSink(ctx, cfg.Sender, svc.Sink.Route(), svc.Routes...)
}
