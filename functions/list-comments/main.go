// Command list-comments is the Knative function behind GET /tasks/{id}/comments.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/commentapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "list-comments"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return commentapi.Serve(ctx, name, commentapi.ListRoute)
	}))
}
