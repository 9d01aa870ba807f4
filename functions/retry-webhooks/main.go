// Command retry-webhooks retries webhook deliveries on every PingSource
// tick (knative/retry-webhooks.yaml, every minute): a CloudEvent POSTed
// to /. Due deliveries are claimed FOR UPDATE SKIP LOCKED with a lease,
// sent holding nothing, then marked.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhook/deliveryfn"
)

const name = "retry-webhooks"

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	f, err := deliveryfn.Open(ctx, name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.ServeSink(ctx, f.Config.Sender, f.Deliverer.TickRoute())
}
