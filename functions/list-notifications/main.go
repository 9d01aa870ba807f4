// Command list-notifications is the Knative function behind GET /notifications: the caller's inbox, newest first.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/notify"
)

const name = "list-notifications"

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
	return svc.Serve(ctx, svc.API.ListRoute())
}
