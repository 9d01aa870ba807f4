// Command recur files the next occurrence of a recurring task when it is
// done: CloudEvents dev.taskfn.task.status_changed.v1 from a KafkaSource
// on the tasks topic (kafka-sources/recur.yaml), POSTed to /; other task
// events are acknowledged and ignored.
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
	"github.com/taskfn/taskfn/shared/recur"
	"github.com/taskfn/taskfn/shared/task"
)

const name = "recur"

// settings: a sink, so no token verification; Kafka, through which the
// new occurrence's task.created goes out right after commit.
type settings struct {
	function.Config
	Sender auth.SenderConfig
	Kafka  kafka.Config
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
	sink, err := recur.NewSink(store)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, sink.Route())
}
