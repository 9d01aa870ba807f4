// Package deliveryfn is the whole of the two webhook delivery functions,
// deliver-webhooks (the KafkaSource's sink) and retry-webhooks (the
// PingSource's tick), which differ only in the route they serve. Apart
// from shared/webhook so that the route functions, which use its store,
// do not link Kafka.
package deliveryfn

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/webhook"
)

// Config: a sink, so no token verification but the sender's; Kafka,
// through which the event that a webhook was disabled goes out right
// after commit; the members table's roles decide who may receive what.
type Config struct {
	function.Config
	Sender   auth.SenderConfig
	Kafka    kafka.Config
	Projects project.ResolverConfig
	Webhook  webhook.Config
}

// Serve runs function name, serving the route route picks, behind the
// sender-identity check, until ctx ends.
func Serve(ctx context.Context, name string, route func(*webhook.Wired) httpx.Route) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	b, err := function.Open(ctx, name, cfg.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	pub, err := kafka.Open(b, cfg.Kafka, outbox.NewMetrics(b.Registry))
	if err != nil {
		return err
	}
	roles, err := project.OpenResolver(b.DB, cfg.Projects)
	if err != nil {
		return err
	}
	w, err := webhook.Wire(b, cfg.Webhook, roles, cfg.Kafka.TasksTopic, pub)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, route(w))
}
