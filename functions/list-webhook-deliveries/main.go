// Command list-webhook-deliveries is the Knative function behind GET /webhooks/{id}/deliveries.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhookapi"
)

const name = "list-webhook-deliveries"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return webhookapi.Serve(ctx, name, webhookapi.DeliveriesRoute)
	}))
}
