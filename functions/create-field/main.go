// Command create-field is the Knative function behind POST /projects/{key}/fields.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/fieldapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "create-field"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return fieldapi.Serve(ctx, name, fieldapi.CreateRoute)
	}))
}
