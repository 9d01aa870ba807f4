package pg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// config is a valid Config for url, as envconfig's defaults would give,
// or as production behind PgBouncer sets them when the tests run there.
func config(url string) pg.Config {
	cfg := pg.Config{
		URL: url, MaxConns: 4, ConnectTimeout: 5 * time.Second, StatementTimeout: 5 * time.Second,
		QueryExecMode: "cache_statement", MaxConnLifetime: 30 * time.Minute, MaxConnIdleTime: 5 * time.Minute,
	}
	if pgtest.PgBouncer() != "" {
		cfg.TransactionPooling, cfg.QueryExecMode, cfg.StatementTimeout = true, "exec", 0
	}
	return cfg
}

// serverURL is a URL of the test server itself (never PgBouncer) naming
// database name.
func serverURL(t *testing.T, name string) string {
	t.Helper()
	return pgtest.DirectURL(name)
}

// freshDatabase returns the URL of a database that does not exist yet,
// dropped at the end of the test if it was made.
func freshDatabase(t *testing.T, prefix string) (string, string) {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := prefix + hex.EncodeToString(b)
	u := serverURL(t, name)
	admin := serverURL(t, "postgres")
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	return u, name
}

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*pg.Config)
	}{
		{"no url", func(c *pg.Config) { c.URL = "" }},
		{"unparsable url", func(c *pg.Config) { c.URL = "postgres://%zz" }},
		{"unparsable read url", func(c *pg.Config) { c.ReadURL = "postgres://%zz" }},
		{"no connections", func(c *pg.Config) { c.MaxConns = 0 }},
		{"min above max", func(c *pg.Config) { c.MinConns = 5 }},
		{"negative min", func(c *pg.Config) { c.MinConns = -1 }},
		{"negative duration", func(c *pg.Config) { c.MaxConnIdleTime = -time.Second }},
		{"statement timeout below a millisecond", func(c *pg.Config) { c.StatementTimeout = time.Microsecond }},
		{"unknown exec mode", func(c *pg.Config) { c.QueryExecMode = "fast" }},
		{"exec mode case", func(c *pg.Config) { c.QueryExecMode = "Exec" }},
		{"prepared statements behind a transaction pooler", func(c *pg.Config) {
			c.TransactionPooling, c.QueryExecMode = true, "cache_statement"
		}},
		{"describe_exec behind a transaction pooler", func(c *pg.Config) {
			c.TransactionPooling, c.QueryExecMode = true, "describe_exec"
		}},
		{"statement timeout through a transaction pooler", func(c *pg.Config) {
			c.TransactionPooling, c.QueryExecMode, c.StatementTimeout = true, "exec", time.Second
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config("postgres://postgres@127.0.0.1:5432/postgres")
			tt.change(&cfg)
			if db, err := pg.Open(t.Context(), cfg); err == nil {
				db.Close()
				t.Errorf("Open(%+v) succeeded", cfg)
			}
		})
	}
}

func TestOpenAppliesConfig(t *testing.T) {
	t.Parallel()
	if pgtest.PgBouncer() != "" {
		t.Skip("startup parameters do not pass PgBouncer: TestStatementTimeoutFromServer covers it")
	}
	base := pgtest.New(t).Primary.Config().ConnString()
	tests := []struct {
		name     string
		mode     string
		timeout  time.Duration
		wantShow string
	}{
		{"cache_statement", "cache_statement", 1500 * time.Millisecond, "1500ms"},
		{"exec, as behind PgBouncer", "exec", 2 * time.Second, "2s"},
		{"simple_protocol", "simple_protocol", time.Second, "1s"},
		{"server default", "cache_describe", 0, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			cfg := config(base)
			cfg.QueryExecMode, cfg.StatementTimeout, cfg.MaxConns = tt.mode, tt.timeout, 2
			db, err := pg.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.Replica != db.Primary {
				t.Error("Replica is not Primary without ReadURL")
			}
			if got := db.Primary.Config().MaxConns; got != 2 {
				t.Errorf("MaxConns %d", got)
			}
			var show string
			if err := db.Primary.QueryRow(ctx, "SHOW statement_timeout").Scan(&show); err != nil {
				t.Fatal(err)
			}
			if show != tt.wantShow {
				t.Errorf("statement_timeout = %q, want %q", show, tt.wantShow)
			}
			if tt.timeout == 0 {
				return
			}
			_, err = db.Primary.Exec(ctx, "SELECT pg_sleep($1::float8)", (tt.timeout + 500*time.Millisecond).Seconds())
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Errorf("long query: err = %v, want query_canceled (57014)", err)
			}
		})
	}
}

func TestReplicaPool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base := pgtest.New(t).Primary.Config().ConnString()
	cfg := config(base)
	cfg.ReadURL = base
	db, err := pg.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if db.Replica == db.Primary {
		t.Fatal("ReadURL set but Replica is Primary")
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for name, pool := range map[string]interface{ Ping(context.Context) error }{"primary": db.Primary, "replica": db.Replica} {
		if err := pool.Ping(ctx); err == nil {
			t.Errorf("%s still usable after Close", name)
		}
	}
}

func TestPingUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		readURL string
	}{
		{"primary", "postgres://postgres@127.0.0.1:1/none?sslmode=disable", ""},
		{"replica", serverURL(t, "postgres"), "postgres://postgres@127.0.0.1:1/none?sslmode=disable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := config(tt.url)
			cfg.ReadURL, cfg.ConnectTimeout = tt.readURL, time.Second
			db, err := pg.Open(t.Context(), cfg)
			if err != nil {
				t.Fatalf("Open should be lazy: %v", err)
			}
			defer db.Close()
			if err := db.Ping(t.Context()); err == nil {
				t.Error("Ping succeeded")
			}
		})
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	if _, err := db.Primary.Exec(ctx, "CREATE TABLE marks (name text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	tests := []struct {
		name      string
		fn        func(tx pgx.Tx) error
		wantErr   error
		wantPanic bool
		wantRow   bool
	}{
		{"commit", func(tx pgx.Tx) error { return nil }, nil, false, true},
		{"rollback on error", func(tx pgx.Tx) error { return errStop }, errStop, false, false},
		{"rollback on panic", func(tx pgx.Tx) error { panic("boom") }, nil, true, false},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				var err error
				panicked := func() (p bool) {
					defer func() { p = recover() != nil }()
					err = pg.InTx(ctx, db.Primary, func(tx pgx.Tx) error {
						if _, err := tx.Exec(ctx, "INSERT INTO marks VALUES ($1)", tt.name); err != nil {
							return err
						}
						return tt.fn(tx)
					})
					return false
				}()
				if panicked != tt.wantPanic {
					t.Errorf("panicked = %t", panicked)
				}
				if err != tt.wantErr {
					t.Errorf("err = %v, want %v as is", err, tt.wantErr)
				}
				var n int
				if err := db.Primary.QueryRow(ctx, "SELECT count(*) FROM marks WHERE name = $1", tt.name).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if (n == 1) != tt.wantRow {
					t.Errorf("%d rows after InTx", n)
				}
			})
		}
	})
	// A panicking fn must not leak its connection with an open transaction.
	if s := db.Primary.Stat(); s.AcquiredConns() != 0 {
		t.Errorf("%d connections still acquired", s.AcquiredConns())
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u, _ := freshDatabase(t, "taskfn_migrate_")
	if err := pg.EnsureDatabase(ctx, u); err != nil {
		t.Fatal(err)
	}
	// Two appliers at once, as two Job pods might: the advisory lock makes
	// one wait, then find nothing left to do.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = migrations.Apply(ctx, u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	state := func() (rows int, max int64) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT count(*), max(version_id) FROM goose_db_version").Scan(&rows, &max); err != nil {
			t.Fatal(err)
		}
		return rows, max
	}
	rows, max := state()
	if max < 1 {
		t.Fatalf("version %d after Migrate", max)
	}
	if _, err := conn.Exec(ctx, "SELECT id, search FROM tasks LIMIT 1"); err != nil {
		t.Errorf("tasks table: %v", err)
	}
	if err := migrations.Apply(ctx, u); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if r, m := state(); r != rows || m != max {
		t.Errorf("second Migrate changed goose_db_version: %d rows, version %d; was %d, %d", r, m, rows, max)
	}
}

func TestEnsureDatabase(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Upper case and a dash need quoting to survive.
	u, name := freshDatabase(t, "Taskfn-Ensure-")
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = pg.EnsureDatabase(ctx, u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("EnsureDatabase %d: %v", i, err)
		}
	}
	if err := pg.EnsureDatabase(ctx, u); err != nil {
		t.Errorf("EnsureDatabase on an existing database: %v", err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != name {
		t.Errorf("connected to %q, want %q", got, name)
	}
}

// InTxBatched runs first's queries with BEGIN (their callbacks before fn)
// and the tail with the commit check; a failure in either rolls all back,
// a callback's error as is.
func TestInTxBatched(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	if _, err := db.Primary.Exec(ctx, "CREATE TABLE steps (name text, step text, PRIMARY KEY (name, step))"); err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("refused")
	tests := []struct {
		name      string
		firstErr  error // returned by first's callback
		fnErr     error
		tailFails bool // the tail inserts a duplicate
		wantErr   error
		wantRows  int
	}{
		{"commit", nil, nil, false, nil, 3},
		{"first's callback refuses", errRefused, nil, false, errRefused, 0},
		{"fn refuses", nil, errRefused, false, errRefused, 0},
		{"tail fails", nil, nil, true, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first := &pgx.Batch{}
			first.Queue("INSERT INTO steps VALUES ($1, 'first')", tt.name)
			var seen int
			first.Queue("SELECT count(*) FROM steps WHERE name = $1", tt.name).QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&seen); err != nil {
					return err
				}
				return tt.firstErr
			})
			ran := false
			err := pg.InTxBatched(ctx, db.Primary, first, func(tx pgx.Tx, tail *pgx.Batch) error {
				ran = true
				if seen != 1 {
					t.Errorf("fn saw %d rows of first, want 1: the callbacks run before fn", seen)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO steps VALUES ($1, 'fn')", tt.name); err != nil {
					return err
				}
				tail.Queue("INSERT INTO steps VALUES ($1, 'tail')", tt.name)
				if tt.tailFails {
					tail.Queue("INSERT INTO steps VALUES ($1, 'tail')", tt.name)
				}
				return tt.fnErr
			})
			switch {
			case tt.tailFails && err == nil:
				t.Error("a failing tail committed")
			case !tt.tailFails && err != tt.wantErr:
				t.Errorf("err = %v, want %v as is", err, tt.wantErr)
			}
			if ran == (tt.firstErr != nil) {
				t.Errorf("fn ran: %t", ran)
			}
			var n int
			if err := db.Primary.QueryRow(ctx, "SELECT count(*) FROM steps WHERE name = $1", tt.name).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != tt.wantRows {
				t.Errorf("%d rows after InTxBatched, want %d", n, tt.wantRows)
			}
		})
	}
	t.Run("begin fails", func(t *testing.T) {
		t.Parallel()
		cfg := db.Primary.Config().Copy()
		cfg.ConnConfig.Port = 1 // nothing listens
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		err = pg.InTxBatched(ctx, pool, nil, func(pgx.Tx, *pgx.Batch) error {
			t.Error("fn ran without a transaction")
			return nil
		})
		if err == nil || !pg.Transient(err) {
			t.Errorf("err = %v, want a transient error", err)
		}
	})
}
