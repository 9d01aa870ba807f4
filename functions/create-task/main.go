// Command create-task is the Knative function behind POST /tasks.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/taskapi"
)

const name = "create-task"

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg taskapi.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	svc, err := taskapi.Open(ctx, name, cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.Serve(ctx, svc.API.CreateRoute())
}
