// Command cleanup deletes aged rows in bounded batches on every PingSource
// tick (a CloudEvent POSTed to /): finished tasks past RETENTION_DAYS, read
// notifications, reports, published outbox rows and processed-event
// records past their own retentions.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/cleanup"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "cleanup"

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg cleanup.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	svc, err := cleanup.Open(ctx, name, cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.ServeSink(ctx, cfg.Sender, svc.Handler.Route())
}
