// Command remind sends due-date reminders and overdue notices on every
// PingSource tick (kafka-sources/remind.yaml, every minute): a
// CloudEvent POSTed to /. Each becomes a task event that notify turns
// into inbox entries and emails.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/remind"
	"github.com/taskfn/taskfn/shared/task"
)

const name = "remind"

// settings: a tick handler, so no token verification; Kafka, through
// which the events go out right after commit.
type settings struct {
	function.Config
	Sender auth.SenderConfig
	Kafka  kafka.Config
	Remind remind.Config
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
	store, err := task.NewStore(b.DB, task.WithTopic(cfg.Kafka.TasksTopic), task.WithPublisher(pub))
	if err != nil {
		return err
	}
	h, err := remind.NewHandler(store, cfg.Remind)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, h.Route())
}
