// Command update-field is the Knative function behind PATCH /projects/{key}/fields/{id}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/fieldapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "update-field"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return fieldapi.Serve(ctx, name, fieldapi.UpdateRoute)
	}))
}
