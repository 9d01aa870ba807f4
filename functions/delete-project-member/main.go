// Command delete-project-member is the Knative function behind DELETE /projects/{key}/members/{subject}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/projectapi"
)

const name = "delete-project-member"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return projectapi.Serve(ctx, name, projectapi.DeleteMemberRoute)
	}))
}
