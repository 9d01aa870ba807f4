// Command request-report is the Knative function behind POST /reports: records a report request (202, Location: /reports/{id}) and emits report.requested.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/report"
)

const name = "request-report"

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
	return svc.Serve(ctx, svc.API.RequestRoute())
}
