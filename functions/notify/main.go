// Command notify is the CloudEvent sink that turns task status changes,
// assignments and completed reports into notifications: CloudEvents
// dev.taskfn.task.status_changed.v1, dev.taskfn.task.assigned.v1 and
// dev.taskfn.task.created.v1 from a KafkaSource on the tasks topic,
// dev.taskfn.report.completed.v1 from one on the reports topic, POSTed to /.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/notify"
)

const name = "notify"

// settings: a sink, so sender tokens rather than users'; SMTP for the emails.
type settings struct {
	function.Config
	Sender auth.SenderConfig
	SMTP   notify.SMTPConfig
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
	store, err := notify.NewStore(b.DB)
	if err != nil {
		return err
	}
	sink, err := notify.OpenSink(b, cfg.SMTP, store)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, sink.Route())
}
