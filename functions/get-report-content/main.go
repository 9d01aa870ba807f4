// Command get-report-content is the Knative function behind GET /reports/{id}/content: downloads a succeeded report.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/report"
)

const name = "get-report-content"

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
	return svc.Serve(ctx, svc.API.ContentRoute())
}
