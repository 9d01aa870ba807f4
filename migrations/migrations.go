// Package migrations holds the database schema as numbered goose SQL files.
// Apply applies them: the deploy Job in a cluster, and the dev runner and
// the tests locally; services never migrate at start, and only what calls
// Apply links goose.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"

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
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
