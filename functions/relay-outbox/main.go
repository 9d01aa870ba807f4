// Command relay-outbox is the Knative function behind the PingSource tick
// "relay-outbox": each tick, a dev.knative.sources.ping CloudEvent POSTed
// to /, publishes to Kafka the events writers left in the outbox (Kafka
// was down, or a pod died between commit and publish), in order per task.
// It answers 503 while Kafka is unreachable, so the tick is retried.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
)

const name = "relay-outbox"

type relayConfig struct {
	Server httpx.ServerConfig
	Log    logging.Config
	DB     pg.Config
	Kafka  events.Config
	Relay  outbox.RelayConfig
}

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg relayConfig
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.New(cfg.Log, name, os.Stdout)
	if err != nil {
		return err
	}
	log.Info().Interface("config", config.Describe(&cfg)).Msg("starting")
	db, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer db.Close()
	pub, err := events.NewPublisher(cfg.Kafka)
	if err != nil {
		return err
	}
	defer pub.Close()
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewPoolCollector("primary", db.Primary))
	m := outbox.NewMetrics(reg)
	relay, err := outbox.NewRelayHandler(db.Primary, m.Instrument(pub), m, cfg.Relay)
	if err != nil {
		return err
	}
	router := httpx.NewRouter(log, reg, db.Ping, httpx.Route{Name: name, Method: http.MethodPost, Path: "/", Handler: relay})
	addr := net.JoinHostPort("", strconv.Itoa(cfg.Server.Port))
	return httpx.Serve(ctx, addr, router, log, cfg.Server.ShutdownTimeout)
}
