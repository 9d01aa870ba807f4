// Command get-field is the Knative function behind GET /projects/{key}/fields/{id}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/fieldapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "get-field"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return fieldapi.Serve(ctx, name, fieldapi.GetRoute)
	}))
}
