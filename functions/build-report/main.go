// Command build-report is the CloudEvent sink that builds reports:
// CloudEvent dev.taskfn.report.requested.v1 from a KafkaSource on the
// reports topic, POSTed to /. It answers once the report is stored.
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
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/report/render"
)

const name = "build-report"

// settings: a sink, so no token verification; the worker's, and Kafka for
// report.completed.
type settings struct {
	function.Config
	Sender auth.SenderConfig
	Worker report.WorkerConfig
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
	store, err := report.NewStore(b.DB, report.WithTopic(cfg.Kafka.ReportsTopic), report.WithPublisher(pub))
	if err != nil {
		return err
	}
	cfg.Worker.Render = render.Formats() // xlsx and charts: linked here only
	sink, err := report.OpenSink(b, cfg.Worker, store)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, sink.Route())
}
