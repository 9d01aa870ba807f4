package migrations_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestFilesAreNumberedWithUpAndDown(t *testing.T) {
	t.Parallel()
	entries, err := migrations.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no migrations embedded")
	}
	name := regexp.MustCompile(`^\d{5}_[a-z0-9_]+\.sql$`)
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			if !name.MatchString(e.Name()) {
				t.Errorf("name does not match %s", name)
			}
			b, err := migrations.FS.ReadFile(e.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, marker := range []string{"-- +goose Up", "-- +goose Down"} {
				if !strings.Contains(string(b), marker) {
					t.Errorf("no %q section", marker)
				}
			}
		})
	}
}

// Every migration can be undone and redone: down to nothing from the
// migrated template clone, then up again.
func TestDownAndUpAgain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := pgtest.New(t).Primary
	cc, err := pgx.ParseConfig(pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*cc)
	defer sqlDB.Close()
	p, err := migrations.NewProvider(sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	tasksExists := func() bool {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass('tasks') IS NOT NULL").Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	steps := []struct {
		name      string
		run       func(context.Context) error
		wantTasks bool
	}{
		{"down to zero", func(ctx context.Context) error { _, err := p.DownTo(ctx, 0); return err }, false},
		{"up again", func(ctx context.Context) error { _, err := p.Up(ctx); return err }, true},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := tasksExists(); got != s.wantTasks {
			t.Errorf("after %s: tasks exists = %t", s.name, got)
		}
	}
}
