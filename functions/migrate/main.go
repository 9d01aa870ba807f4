// Command migrate applies the schema migrations in migrations/ and exits:
// the image of the migrations Job (knative/migrate-job.yaml), run once per
// release rather than by every function pod at start. Not a Knative Service.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
)

const name = "migrate"

// migrateConfig reads the same variables as the functions (the Job shares
// their ConfigMap and Secret); only DATABASE_URL and LOG_LEVEL matter here.
type migrateConfig struct {
	Log logging.Config
	DB  pg.Config
	// Timeout bounds the whole run: migrations.Apply has no connect timeout of its
	// own, and a Job stuck on an unreachable server should fail and retry.
	Timeout time.Duration `envconfig:"MIGRATE_TIMEOUT" default:"10m"`
}

func main() { os.Exit(lifecycle.Run(name, run)) }

func run(ctx context.Context) error {
	var cfg migrateConfig
	if err := config.Load(&cfg); err != nil {
		return err
	}
	log, err := logging.New(cfg.Log, name, os.Stdout)
	if err != nil {
		return err
	}
	log.Info().Interface("config", config.Describe(&cfg)).Msg("starting")
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	if err := migrations.Apply(ctx, cfg.DB.URL); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	log.Info().Dur("event.duration", time.Since(start)).Msg("migrations applied")
	return nil
}
