// Command build-report is the CloudEvent sink that builds reports:
// CloudEvent dev.taskfn.report.requested.v1 from a KafkaSource on the
// reports topic, POSTed to /. It answers once the report is stored.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/report"
)

const name = "build-report"

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg report.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	svc, err := report.Open(ctx, name, cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.Serve(ctx, svc.Sink.Route())
}
