// Command deliver-webhooks posts events to their webhooks: every
// CloudEvent of the tasks topic from the KafkaSource deliver-webhooks
// (kafka-sources/deliver-webhooks.yaml), POSTed to /. Each matching
// webhook whose owner may see the event gets one durable delivery, whose
// first attempt starts at once; retries are retry-webhooks'.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhook"
	"github.com/taskfn/taskfn/shared/webhook/deliveryfn"
)

const name = "deliver-webhooks"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return deliveryfn.Serve(ctx, name, func(w *webhook.Wired) httpx.Route { return w.Sink.Route() })
	}))
}
