// Command list-projects is the Knative function behind GET /projects.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/projectapi"
)

const name = "list-projects"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return projectapi.Serve(ctx, name, projectapi.ListRoute)
	}))
}
