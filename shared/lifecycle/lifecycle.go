// Package lifecycle runs a function's process: the Go runtime sized to the
// pod, a context that ends on SIGTERM (Knative's stop signal) or SIGINT,
// and an exit code for main.
package lifecycle

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// DefaultGOGC is the garbage collector's target when GOGC is not set: the
// heap may grow to 5× the live data between collections instead of 2×.
// A function's live heap is a few MB, so at the default a busy pod
// collected dozens of times a second; 400 cut the list route's CPU by
// about 12% (BENCHMARKS.md). The memory limit below bounds the growth.
const DefaultGOGC = 400

// Run sizes the runtime (TuneRuntime), then calls fn with a context
// cancelled by SIGTERM or SIGINT and returns the exit code; only main calls
// os.Exit with it.
func Run(name string, fn func(ctx context.Context) error) int {
	if err := TuneRuntime(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (running with the runtime's defaults)\n", name, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := fn(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// TuneRuntime sets the garbage collector for a small pod: GOGC to
// DefaultGOGC, and GOMEMLIMIT to 90% of the container's memory limit (its
// cgroup), so the GC works harder as the pod nears its limit instead of
// the pod being killed. Either is left alone when its environment variable
// is set (AUTOMEMLIMIT=off also leaves GOMEMLIMIT); without a cgroup limit
// there is no memory limit. GOMAXPROCS already follows the CPU limit (Go
// 1.25 and later).
func TuneRuntime() error {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(DefaultGOGC)
	}
	if _, err := memlimit.Set(); err != nil {
		return fmt.Errorf("lifecycle: memory limit: %w", err)
	}
	return nil
}
