// Command create-webhook is the Knative function behind POST /webhooks.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhookapi"
)

const name = "create-webhook"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return webhookapi.Serve(ctx, name, webhookapi.CreateRoute)
	}))
}
