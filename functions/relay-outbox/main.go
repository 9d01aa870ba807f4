// Command relay-outbox is the Knative function behind the PingSource tick
// "relay-outbox": each tick, a dev.knative.sources.ping CloudEvent POSTed
// to /, publishes to Kafka the events writers left in the outbox (Kafka
// was down, or a pod died between commit and publish), in order per task.
// It answers 503 while Kafka is unreachable, so the tick is retried.
package main

import (
	"context"
	"errors"
	"net/http"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/outbox"
)

const name = "relay-outbox"

type relayConfig struct {
	function.Config
	Sender auth.SenderConfig
	Kafka  kafka.Config
	Relay  outbox.RelayConfig
}

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg relayConfig
	if err := config.Load(&cfg); err != nil {
		return err
	}
	b, err := function.Open(ctx, name, cfg.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	m := outbox.NewMetrics(b.Registry)
	pub, err := kafka.Open(b, cfg.Kafka, m)
	if err != nil {
		return err
	}
	if pub == nil {
		return errors.New("KAFKA_BROKERS is required: relaying is publishing")
	}
	relay, err := outbox.NewRelayHandler(b.DB.Primary, pub, m, cfg.Relay)
	if err != nil {
		return err
	}
	return b.ServeSink(ctx, cfg.Sender, httpx.Route{Name: name, Method: http.MethodPost, Path: "/", Handler: relay})
}
