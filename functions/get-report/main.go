// Command get-report is the Knative function behind GET /reports/{id}: a report's status and progress, for its requester.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

const name = "get-report"

// settings: reading a stored report needs neither Kafka nor the worker's.
type settings struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
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
	lim, err := ratelimit.Open(b, cfg.RateLimit)
	if err != nil {
		return err
	}
	gate, err := b.Gate(cfg.Auth, lim.As(ratelimit.Reports), task.Anyone...)
	if err != nil {
		return err
	}
	store, err := report.NewStore(b.DB)
	if err != nil {
		return err
	}
	route, err := report.GetRoute(gate, store)
	if err != nil {
		return err
	}
	return b.Serve(ctx, route)
}
