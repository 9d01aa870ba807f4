// Command delete-project is the Knative function behind DELETE /projects/{key}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/projectapi"
)

const name = "delete-project"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return projectapi.Serve(ctx, name, projectapi.DeleteRoute)
	}))
}
