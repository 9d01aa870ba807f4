// Command retry-webhooks retries webhook deliveries on every PingSource
// tick (knative/retry-webhooks.yaml, every minute): a CloudEvent POSTed
// to /. Due deliveries are claimed FOR UPDATE SKIP LOCKED with a lease,
// sent holding nothing, then marked.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhook"
	"github.com/taskfn/taskfn/shared/webhook/deliveryfn"
)

const name = "retry-webhooks"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return deliveryfn.Serve(ctx, name, func(w *webhook.Wired) httpx.Route { return w.Deliverer.TickRoute() })
	}))
}
