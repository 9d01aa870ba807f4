// Command update-project is the Knative function behind PATCH /projects/{key}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/projectapi"
)

const name = "update-project"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return projectapi.Serve(ctx, name, projectapi.UpdateRoute)
	}))
}
