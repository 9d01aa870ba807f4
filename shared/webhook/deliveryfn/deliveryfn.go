// Package deliveryfn opens the two webhook delivery functions,
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

// Fn is a delivery function opened: its base, its configuration and the
// delivery wired on it. Its main serves one route through
// Base.ServeSink and closes Base.
type Fn struct {
	*function.Base
	Config Config
	*webhook.Wired
}

// Open opens function name from the environment: the base, the Kafka
// publisher, the roles and the delivery.
func Open(ctx context.Context, name string) (*Fn, error) {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return nil, err
	}
	return function.OpenWith(ctx, name, cfg.Config, &cfg, os.Stdout, func(b *function.Base) (*Fn, error) {
		pub, err := kafka.Open(b, cfg.Kafka, outbox.NewMetrics(b.Registry))
		if err != nil {
			return nil, err
		}
		roles, err := project.OpenResolver(b.DB, cfg.Projects)
		if err != nil {
			return nil, err
		}
		w, err := webhook.Wire(b, cfg.Webhook, roles, cfg.Kafka.TasksTopic, pub)
		if err != nil {
			return nil, err
		}
		return &Fn{Base: b, Config: cfg, Wired: w}, nil
	})
}
