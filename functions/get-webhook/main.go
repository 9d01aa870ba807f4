// Command get-webhook is the Knative function behind GET /webhooks/{id}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/webhookapi"
)

const name = "get-webhook"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return webhookapi.Serve(ctx, name, webhookapi.GetRoute)
	}))
}
