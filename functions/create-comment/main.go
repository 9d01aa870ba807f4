// Command create-comment is the Knative function behind POST /tasks/{id}/comments.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/commentapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "create-comment"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return commentapi.Serve(ctx, name, commentapi.CreateRoute)
	}))
}
