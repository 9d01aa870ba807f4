// Command redeliver-webhook is the Knative function behind POST /webhooks/{id}/deliveries/{delivery}/redeliver.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhookapi"
)

const name = "redeliver-webhook"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return webhookapi.Serve(ctx, name, webhookapi.RedeliverRoute)
	}))
}
