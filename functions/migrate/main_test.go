package main

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// latestMigration is the highest version, SQL or Go.
func latestMigration(t *testing.T) int64 {
	t.Helper()
	latest, err := migrations.Latest()
	if err != nil || latest == 0 {
		t.Fatalf("no migrations: %d, %v", latest, err)
	}
	return latest
}

func TestRunAppliesMigrationsOnce(t *testing.T) {
	dbURL := pgtest.NewEmpty(t)
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("LOG_LEVEL", "warn")
	ctx := context.Background()

	// The second run is what every later release's Job does: a no-op.
	for i := range 2 {
		if err := run(ctx); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var version int64
	var applied int
	const q = `
SELECT coalesce(max(version_id), 0), count(*)
FROM goose_db_version
WHERE version_id > 0`
	if err := conn.QueryRow(ctx, q).Scan(&version, &applied); err != nil {
		t.Fatal(err)
	}
	if want := latestMigration(t); version != want {
		t.Errorf("schema version = %d, want %d", version, want)
	}
	if names, _ := fs.Glob(migrations.FS, "*.sql"); applied != len(names)+len(migrations.Go) {
		t.Errorf("%d migrations recorded, want %d (each exactly once)", applied, len(names)+len(migrations.Go))
	}
	var tasks bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.tasks') IS NOT NULL`).Scan(&tasks); err != nil || !tasks {
		t.Errorf("table tasks missing after migrate (err %v)", err)
	}
}

func TestRunFails(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "server unreachable",
			env:  map[string]string{"DATABASE_URL": "postgres://postgres@127.0.0.1:1/taskfn?sslmode=disable&connect_timeout=2"},
			want: "migrations:",
		},
		{
			name: "url unparsable",
			env:  map[string]string{"DATABASE_URL": "postgres://%zz"},
			want: "migrations:",
		},
		{
			name: "bad log level",
			env:  map[string]string{"LOG_LEVEL": "loud"},
			want: "LOG_LEVEL",
		},
		{
			name: "bad timeout",
			env:  map[string]string{"MIGRATE_TIMEOUT": "soon"},
			want: "MIGRATE_TIMEOUT",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// t.Setenv rules out t.Parallel: these cases share the process env.
			t.Setenv("LOG_LEVEL", "warn")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A server that accepts but never answers is what a stuck network looks
// like; MIGRATE_TIMEOUT must end the run instead of the Job hanging.
func TestRunTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	t.Setenv("LOG_LEVEL", "warn")
	t.Setenv("DATABASE_URL", "postgres://postgres@"+ln.Addr().String()+"/taskfn?sslmode=disable")
	t.Setenv("MIGRATE_TIMEOUT", "300ms")

	start := time.Now()
	err = run(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run() = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %s with a 300ms timeout", d)
	}
}
