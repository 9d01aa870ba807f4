// Command delete-comment is the Knative function behind DELETE /comments/{id}.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/commentapi"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "delete-comment"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return commentapi.Serve(ctx, name, commentapi.DeleteRoute)
	}))
}
