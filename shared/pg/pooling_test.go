package pg_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// Behind a transaction pooler the statement timeout is the server's default
// for the role or database (see pg.Open). Here a database gets a short one
// and a long statement must be cancelled by it, alone and inside a
// transaction, in every exec mode that works in transaction pooling, and
// the pooled connection must stay usable. With TEST_PGBOUNCER_ADDR set the
// pools go through PgBouncer; otherwise the same settings run directly.
func TestStatementTimeoutFromServer(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	for _, mode := range []string{"exec", "simple_protocol", "cache_describe"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			// Name the database without connecting through New's pool:
			// a server connection opened now would keep the old default.
			base := pgtest.New(t).Primary.Config().ConnString()
			cc, err := pgx.ParseConfig(base)
			if err != nil {
				t.Fatal(err)
			}
			admin, err := pgx.Connect(ctx, pgtest.DirectURL(cc.Database))
			if err != nil {
				t.Fatal(err)
			}
			_, err = admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{cc.Database}.Sanitize()+" SET statement_timeout = '300ms'")
			admin.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}

			cfg := config(base)
			cfg.TransactionPooling, cfg.QueryExecMode, cfg.StatementTimeout, cfg.MaxConns = true, mode, 0, 1
			db, err := pg.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()

			var show string
			if err := db.Primary.QueryRow(ctx, "SHOW statement_timeout").Scan(&show); err != nil {
				t.Fatal(err)
			}
			if show != "300ms" {
				t.Errorf("statement_timeout = %q, want the database's 300ms", show)
			}
			long := func(q pgxExecer) error {
				_, err := q.Exec(ctx, "SELECT pg_sleep($1::float8)", (10 * timeout).Seconds())
				return err
			}
			for name, run := range map[string]func() error{
				"alone": func() error { return long(db.Primary) },
				"in a transaction": func() error {
					return pg.InTx(ctx, db.Primary, func(tx pgx.Tx) error { return long(tx) })
				},
			} {
				// The server says why it stopped the sleep: that is the
				// timeout at work, however long a busy machine took.
				err := run()
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "57014" || !strings.Contains(pgErr.Message, "statement timeout") {
					t.Errorf("%s: err = %v, want 57014 canceling statement due to statement timeout", name, err)
				}
			}
			// The server connection, shared through PgBouncer, is fine.
			var n int
			if err := db.Primary.QueryRow(ctx, "SELECT $1::int", 7).Scan(&n); err != nil || n != 7 {
				t.Errorf("after the timeouts: %d, %v", n, err)
			}
			if got := db.Primary.Stat().TotalConns(); got != 1 {
				t.Errorf("%d connections, want the one the pool had", got)
			}
		})
	}
}

type pgxExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// PgBouncer refuses the statement_timeout startup parameter: a pool not
// configured for it fails loudly rather than running without a timeout
// (our pgbouncer.ini ignores no startup parameter for that reason).
func TestPgBouncerRefusesStartupTimeout(t *testing.T) {
	t.Parallel()
	if pgtest.PgBouncer() == "" {
		t.Skip("needs TEST_PGBOUNCER_ADDR (make test-pgbouncer)")
	}
	cfg := config(pgtest.New(t).Primary.Config().ConnString())
	cfg.TransactionPooling, cfg.StatementTimeout = false, 5*time.Second
	db, err := pg.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Ping(t.Context())
	if err == nil || !strings.Contains(err.Error(), "unsupported startup parameter: statement_timeout") {
		t.Errorf("Ping = %v, want PgBouncer's unsupported startup parameter", err)
	}
}
