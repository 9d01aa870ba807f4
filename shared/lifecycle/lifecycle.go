// Package lifecycle runs a function's process: a context that ends on
// SIGTERM (Knative's stop signal) or SIGINT, and an exit code for main.
package lifecycle

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Run calls fn with a context cancelled by SIGTERM or SIGINT and returns the
// exit code; only main calls os.Exit with it.
func Run(name string, fn func(ctx context.Context) error) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := fn(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
