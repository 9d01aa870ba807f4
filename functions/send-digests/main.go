// Command send-digests sends the weekly digests that are due on every
// PingSource tick (knative/send-digests.yaml, every 15 minutes): a
// CloudEvent POSTed to /. Each digest becomes an event that notify turns
// into an inbox entry and an email with the chart inline.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/digestsend"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

const name = "send-digests"

// settings: a tick handler, so no token verification; Kafka, through
// which the events go out right after commit; the project roles, read
// fresh for each digest.
type settings struct {
	function.Config
	Sender   auth.SenderConfig
	Kafka    kafka.Config
	Projects project.ResolverConfig
	Digest   digestsend.TickConfig
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
	pub, err := kafka.Open(b, cfg.Kafka, outbox.NewMetrics(b.Registry))
	if err != nil {
		return err
	}
	store, err := digest.NewStore(b.DB, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return err
	}
	tasks, err := task.NewStore(b.DB)
	if err != nil {
		return err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	h, err := digestsend.NewTick(store, tasks, roles, b.DB, cfg.Digest)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, h.Route())
}
