// Command request-report is the Knative function behind POST /reports: records a report request (202, Location: /reports/{id}) and emits report.requested.
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
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

const name = "request-report"

// settings: the requester's limits, and Kafka, through which report.requested
// goes out right after commit (without brokers relay-outbox sends it).
type settings struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	Limits    report.Limits
	Kafka     kafka.Config
	Projects  project.ResolverConfig
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
	pub, err := kafka.Open(b, cfg.Kafka, outbox.NewMetrics(b.Registry))
	if err != nil {
		return err
	}
	store, err := report.NewStore(b.DB, report.WithTopic(cfg.Kafka.ReportsTopic), report.WithPublisher(pub))
	if err != nil {
		return err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	route, err := report.RequestRoute(gate, store, roles, cfg.Limits)
	if err != nil {
		return err
	}
	return b.Serve(ctx, route)
}
