// Command put-preferences is the Knative function behind PUT
// /me/preferences.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

const name = "put-preferences"

func main() {
	os.Exit(lifecycle.Run(name, func(ctx context.Context) error {
		return digest.Serve(ctx, name, digest.PutRoute)
	}))
}
