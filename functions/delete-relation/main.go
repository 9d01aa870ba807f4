// Command delete-relation is the Knative function behind DELETE /tasks/{id}/relations/{kind}/{other}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/taskapi"
)

const name = "delete-relation"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return taskapi.ServeRelation(ctx, name, taskapi.DeleteRelationRoute)
	}))
}
