// Command dev runs all of taskfn in one process for local work (make dev):
// every function's routes on one address with the production paths, the
// migrations applied, and — when OIDC_ISSUER is unset — a Keycloak-shaped
// development issuer reading knative/keycloak/realm-taskfn.json. Never deployed.
package main

import (
	"context"
	"os"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
)

func main() { os.Exit(lifecycle.Run("dev", run)) }

func run(ctx context.Context) error {
	var cfg devConfig
	if err := config.Load(&cfg); err != nil {
		return err
	}
	return serve(ctx, cfg, nil)
}
