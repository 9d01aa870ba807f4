// Command deliver-webhooks posts events to their webhooks: every
// CloudEvent of the tasks topic from the KafkaSource deliver-webhooks
// (kafka-sources/deliver-webhooks.yaml), POSTed to /. Each matching
// webhook whose owner may see the event gets one durable delivery, whose
// first attempt starts at once; retries are retry-webhooks'.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhook/deliveryfn"
)

const name = "deliver-webhooks"

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	f, err := deliveryfn.Open(ctx, name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.ServeSink(ctx, f.Config.Sender, f.Sink.Route())
}
