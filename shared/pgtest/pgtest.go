// Package pgtest gives each test its own PostgreSQL database, cloned from a
// template migrated once per test binary. Cloning an already migrated
// database takes tens of milliseconds; migrating per test would not, and
// sharing one database would make parallel tests see each other's rows.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// and call New in each test. The server is TEST_DATABASE_URL (a URL naming
// a database the user may connect to, with the right to create databases),
// by default the local "postgres" database.
//
// With TEST_PGBOUNCER_ADDR set (host:port of a PgBouncer in transaction
// pooling mode in front of that server, as .ci/pgbouncer/start runs it),
// New's pools connect through PgBouncer instead, configured as production
// behind it: TransactionPooling on, DATABASE_QUERY_EXEC_MODE (default
// exec), and the statement timeout a server-side default. Databases are
// still created, migrated and dropped directly on the server: that needs a
// session of its own, which a transaction pooler does not give.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/pg"
)

const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Every database this package makes is named prefix_<unix seconds>_<random>.
// The random part keeps concurrently running test binaries apart; the time
// lets Main drop what a crashed run left behind.
const (
	prefix    = "taskfn_test"
	staleAge  = 2 * time.Hour
	setupTime = time.Minute
)

var namePattern = regexp.MustCompile(`^` + prefix + `_(\d+)_[0-9a-f]+$`)

// state is what Main prepares for New. A test binary has one TestMain, so
// this package-level state is set once, before any test runs.
var state struct {
	adminURL *url.URL
	// bouncer is TEST_PGBOUNCER_ADDR; empty means connect directly.
	bouncer  string
	execMode string
	admin    *pgxpool.Pool
	template string
	err      error // setup failure, reported by New so it names the test
}

// Main creates and migrates the template database, runs the tests, and
// drops the template. If setup fails, every New fails with the reason.
// It returns, and the testing package then exits with m.Run's result.
func Main(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTime)
	state.err = setup(ctx)
	cancel()

	m.Run()

	ctx, cancel = context.WithTimeout(context.Background(), setupTime)
	defer cancel()
	if state.template != "" {
		if err := dropDatabase(ctx, state.template); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		}
	}
	if state.admin != nil {
		state.admin.Close()
	}
}

func setup(ctx context.Context) error {
	raw := os.Getenv("TEST_DATABASE_URL")
	if raw == "" {
		raw = defaultAdminURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New("pgtest: TEST_DATABASE_URL must be a postgres:// URL")
	}
	state.adminURL = u
	if addr := os.Getenv("TEST_PGBOUNCER_ADDR"); addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("pgtest: TEST_PGBOUNCER_ADDR %q: want host:port", addr)
		}
		state.bouncer = addr
		state.execMode = os.Getenv("DATABASE_QUERY_EXEC_MODE")
		if state.execMode == "" {
			state.execMode = "exec"
		}
	}
	state.admin, err = pgxpool.New(ctx, raw)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	dropStale(ctx)

	name, err := newName()
	if err != nil {
		return err
	}
	if _, err := state.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("pgtest: create template: %w", err)
	}
	state.template = name
	if err := migrations.Apply(ctx, databaseURL(name)); err != nil {
		return fmt.Errorf("pgtest: migrate template: %w", err)
	}
	return nil
}

// dropStale removes databases left by test binaries that died before their
// cleanup ran. Best effort: a failure here must not fail this run.
func dropStale(ctx context.Context) {
	rows, err := state.admin.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix+`\_%`)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		m := namePattern.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		sec, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) < staleAge {
			continue
		}
		_ = dropDatabase(ctx, n)
	}
}

// New returns a pool pair on a fresh database cloned from the migrated
// template; the pools are closed and the database dropped when t ends.
// Tests may run it in parallel.
func New(t testing.TB) *pg.DB {
	t.Helper()
	db, err := pg.Open(context.Background(), NewConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close) // cleanups run last-in first-out: close, then drop
	return db
}

// NewConfig makes a fresh database as New does, dropped when t ends, and
// returns the configuration to open it with, for tests that open pools
// themselves: a second database as a replica, a function's whole wiring.
func NewConfig(t testing.TB) pg.Config {
	t.Helper()
	ctx := context.Background()
	name := create(t, state.template)
	cfg := pg.Config{
		URL:      databaseURL(name),
		MaxConns: 8,
		// Generous: tests check behaviour, not latency, and may share
		// the machine with other test binaries under -race.
		StatementTimeout: time.Minute,
		ConnectTimeout:   10 * time.Second,
		QueryExecMode:    "cache_statement",
		MaxConnLifetime:  time.Hour,
		MaxConnIdleTime:  time.Hour,
	}
	if state.bouncer != "" {
		// The timeout cannot travel through PgBouncer (see pg.Open):
		// production sets it on the role, the clone gets it as its
		// database default before PgBouncer first connects to it.
		q := "ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " SET statement_timeout = " + strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
		if _, err := state.admin.Exec(ctx, q); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		cfg.URL = bouncerURL(name)
		cfg.TransactionPooling = true
		cfg.QueryExecMode = state.execMode
		cfg.StatementTimeout = 0
	}
	return cfg
}

// NewEmpty makes a database with no schema at all, for what must start
// from nothing (the migrations themselves), dropped when t ends, and
// returns its URL on the server itself, bypassing PgBouncer.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return databaseURL(create(t, ""))
}

// create makes a database named as this package names them, from template
// ("" for PostgreSQL's default), and drops it when t ends.
func create(t testing.TB, template string) string {
	t.Helper()
	if state.admin == nil && state.err == nil {
		t.Fatal("pgtest: call pgtest.Main from TestMain before pgtest.New")
	}
	if state.err != nil {
		t.Fatal(state.err)
	}
	name, err := newName()
	if err != nil {
		t.Fatal(err)
	}
	q := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		q += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := state.admin.Exec(context.Background(), q); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := dropDatabase(context.Background(), name); err != nil {
			t.Error(err)
		}
	})
	return name
}

func newName() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	return fmt.Sprintf("%s_%d_%s", prefix, time.Now().Unix(), hex.EncodeToString(b)), nil
}

// databaseURL is the admin URL pointing at another database.
func databaseURL(name string) string {
	u := *state.adminURL
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// bouncerURL is databaseURL through PgBouncer, which forwards any
// database name to the server with the same user.
func bouncerURL(name string) string {
	u, _ := url.Parse(databaseURL(name))
	u.Host = state.bouncer
	return u.String()
}

// PgBouncer is TEST_PGBOUNCER_ADDR: the PgBouncer New's pools go through,
// or "" when they connect directly.
func PgBouncer() string { return state.bouncer }

// DirectURL is the URL of database name on the server itself, bypassing
// PgBouncer, for what needs a session: migrations (advisory locks),
// creating and dropping databases, pg_stat_activity of other databases.
func DirectURL(name string) string { return databaseURL(name) }

func dropDatabase(ctx context.Context, name string) error {
	// FORCE ends sessions a test leaked instead of failing on them.
	if _, err := state.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop %s: %w", name, err)
	}
	return nil
}
