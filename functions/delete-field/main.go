// Command delete-field is the Knative function behind DELETE /projects/{key}/fields/{id}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/fieldapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "delete-field"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return fieldapi.Serve(ctx, name, fieldapi.DeleteRoute)
	}))
}
