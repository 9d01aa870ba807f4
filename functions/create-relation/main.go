// Command create-relation is the Knative function behind POST /tasks/{id}/relations.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/taskapi"
)

const name = "create-relation"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return taskapi.ServeRelation(ctx, name, taskapi.CreateRelationRoute)
	}))
}
