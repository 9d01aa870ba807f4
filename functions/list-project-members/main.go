// Command list-project-members is the Knative function behind GET /projects/{key}/members.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/projectapi"
)

const name = "list-project-members"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return projectapi.Serve(ctx, name, projectapi.ListMembersRoute)
	}))
}
