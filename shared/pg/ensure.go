package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EnsureDatabase creates the database named in url if it does not exist,
// connecting to the "postgres" database of the same server as the same
// user. It is for dev runners and tests; a cluster's database is
// provisioned outside the application.
func EnsureDatabase(ctx context.Context, url string) error {
	cc, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("pg: ensure database: %w", err)
	}
	name := cc.Database
	if name == "" {
		return errors.New("pg: ensure database: url names no database")
	}
	admin := cc.Copy()
	admin.Database = "postgres"
	// A one-off statement: no prepared statement to collide with others'
	// behind a transaction pooler.
	admin.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return fmt.Errorf("pg: ensure database: %w", err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	const q = `
SELECT EXISTS (
  SELECT 1
  FROM pg_database
  WHERE datname = $1
)`
	var exists bool
	if err := conn.QueryRow(ctx, q, name).Scan(&exists); err != nil {
		return fmt.Errorf("pg: ensure database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	// CREATE DATABASE takes no parameters; the name is quoted as an identifier.
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42P04": // duplicate_database: created by someone else meanwhile
			return nil
		case "23505": // the same race, caught by pg_database's unique index
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("pg: ensure database %q: %w", name, err)
	}
	return nil
}
