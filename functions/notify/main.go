// Command notify is the CloudEvent sink that turns task status changes,
// assignments and completed reports into notifications: CloudEvents
// dev.taskfn.task.status_changed.v1, dev.taskfn.task.assigned.v1 and
// dev.taskfn.task.created.v1 from a KafkaSource on the tasks topic,
// dev.taskfn.report.completed.v1 from one on the reports topic, POSTed to /.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/notify"
)

const name = "notify"

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg notify.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	svc, err := notify.Open(ctx, name, cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.Serve(ctx, svc.Sink.Route())
}
