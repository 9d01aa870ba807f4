// Package migrations holds the database schema as numbered goose SQL files.
// Apply applies them: the deploy Job in a cluster, and the dev runner and
// the tests locally; services never migrate at start, and only what calls
// Apply links goose.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// FS holds every migration, named NNNNN_what.sql so goose orders them.
//
//go:embed *.sql
var FS embed.FS

// Apply applies every pending migration to the database at url; with
// none pending it changes nothing. Concurrent callers are safe: goose holds
// a session advisory lock while it works, and the others wait for it.
// Because that lock belongs to a session, url must reach PostgreSQL
// directly, not through PgBouncer in transaction pooling mode.
func Apply(ctx context.Context, url string) (err error) {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	db := stdlib.OpenDB(*cc)
	defer func() { err = errors.Join(err, db.Close()) }()

	// Poll for the lock every second for up to five minutes: a long wait
	// means another applier is building indexes, not that something broke.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := NewProvider(db, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// Go holds the migrations written in Go (see projects.go for why).
var Go = []*goose.Migration{projectsMigration}

// NewProvider returns a goose provider of every migration, SQL and Go, on db.
func NewProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	return goose.NewProvider(goose.DialectPostgres, db, FS, append(opts, goose.WithGoMigrations(Go...))...)
}

// Latest is the highest version among all migrations.
func Latest() (int64, error) {
	names, err := fs.Glob(FS, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, n := range names {
		v, err := strconv.ParseInt(strings.SplitN(n, "_", 2)[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("migrations: %s: %w", n, err)
		}
		latest = max(latest, v)
	}
	for _, m := range Go {
		latest = max(latest, m.Version)
	}
	return latest, nil
}
