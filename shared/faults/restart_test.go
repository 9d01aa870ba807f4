//go:build faults

package faults_test

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// Shared by the restart tests.
const (
	// workers write at once, each its own tasks.
	workers = 4
	// minWrites is how many writes a restart test tries at least.
	minWrites = 1200
	// recoveryLimit: the functions acknowledge writes again within this
	// of the server accepting connections, without a restart of their own.
	recoveryLimit = 5 * time.Second
	// runLimit bounds the driving of a test.
	runLimit = 45 * time.Second
)

// TestPostgresRestart restarts PostgreSQL twice under write load through
// the real create-task and update-task: once at once (pg_ctl restart -m
// fast), once with two seconds down. Every write acknowledged is in the
// database with its outbox rows, every refused one was answered 503 with
// Retry-After and left nothing, no other status was answered, and both
// functions, still the same processes, acknowledge writes again within
// recoveryLimit of the server being back.
func TestPostgresRestart(t *testing.T) {
	r := newRig(t)
	env := append(r.env, "DATABASE_URL="+r.pg.URL(database))
	runRestarts(t, r, env, []disruption{
		{"PostgreSQL fast restart", func() (time.Time, time.Time) { return r.pg.restart(0) }},
		{"PostgreSQL fast shutdown, 2s down", func() (time.Time, time.Time) { return r.pg.restart(2 * time.Second) }},
	})
}

// TestPgBouncerRestart is TestPostgresRestart with the functions behind a
// PgBouncer in transaction pooling mode, configured as docs/operations.md
// says, and PgBouncer restarted: once after a safe shutdown (SIGINT:
// transactions in progress finish first), once after an immediate one
// (SIGTERM: they are cut) and two seconds down.
func TestPgBouncerRestart(t *testing.T) {
	r := newRig(t)
	// The statement timeout cannot pass PgBouncer: on the server instead.
	if _, err := r.db.Exec(context.Background(), "ALTER DATABASE "+database+" SET statement_timeout = '5s'"); err != nil {
		t.Fatal(err)
	}
	b := startBouncer(t, r.pg)
	env := append(r.env, "DATABASE_URL="+b.URL(database),
		"DATABASE_TRANSACTION_POOLING=true", "DATABASE_QUERY_EXEC_MODE=exec", "DATABASE_STATEMENT_TIMEOUT=0")
	runRestarts(t, r, env, []disruption{
		{"PgBouncer safe shutdown and start", func() (time.Time, time.Time) { return b.restart(syscall.SIGINT, 0) }},
		{"PgBouncer immediate shutdown, 2s down", func() (time.Time, time.Time) { return b.restart(syscall.SIGTERM, 2*time.Second) }},
	})
}

func runRestarts(t *testing.T, r *rig, env []string, ds []disruption) {
	create := startFunction(t, "create-task", env)
	update := startFunction(t, "update-task", env)
	d := newDriver(create.url, update.url, r.token, r.db, true)
	start := time.Now()
	outs := driveThrough(t, d, workers, minWrites, recoveryLimit+time.Second, runLimit, ds)
	took := time.Since(start)
	results := d.all()

	for _, f := range []*function{create, update} {
		if _, starts := f.pid(); !f.alive() || starts != 1 {
			t.Errorf("%s: alive %v after %d starts; it must ride out the restarts", f.name, f.alive(), starts)
		}
		for _, l := range f.errorLines() {
			t.Errorf("%s logged an error: %s", f.name, l)
		}
	}
	tl, _ := r.check(t, results, false)
	t.Logf("%s in %s from %d workers; %d commits whose answer was lost, found committed\n%s", tl, took.Round(100*time.Millisecond),
		workers, create.resolvedCommits()+update.resolvedCommits(), recoveries(t, results, outs, recoveryLimit))
}
