// Package pg opens the PostgreSQL connection pools every function shares,
// runs transactions, and applies the schema migrations.
package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// Config is the database part of every function's configuration.
type Config struct {
	// URL and ReadURL are in either form pgx accepts (postgres:// URL or
	// key=value); the start-up log masks their passwords.
	URL string `envconfig:"DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/taskfn?sslmode=disable" secret:"postgres"`
	// ReadURL is an optional replica; empty means reads use the primary.
	ReadURL string `envconfig:"DATABASE_READ_URL" secret:"postgres"`
	// Knative runs many small pods, so each keeps a small pool.
	MaxConns       int32         `envconfig:"DATABASE_MAX_CONNS" default:"4"`
	MinConns       int32         `envconfig:"DATABASE_MIN_CONNS" default:"0"`
	ConnectTimeout time.Duration `envconfig:"DATABASE_CONNECT_TIMEOUT" default:"5s"`
	// StatementTimeout bounds every statement; 0 leaves the server's
	// setting alone. It must be 0 with TransactionPooling: see Open.
	StatementTimeout time.Duration `envconfig:"DATABASE_STATEMENT_TIMEOUT" default:"5s"`
	// QueryExecMode is a pgx query exec mode: cache_statement, cache_describe,
	// describe_exec, exec or simple_protocol. Use "exec" behind PgBouncer in
	// transaction pooling mode: prepared statements cached per connection
	// fail there, as the next statement may land on another server connection.
	QueryExecMode string `envconfig:"DATABASE_QUERY_EXEC_MODE" default:"cache_statement"`
	// TransactionPooling says the URLs reach PostgreSQL through a pooler in
	// transaction mode (PgBouncer pool_mode = transaction), where no session
	// state of ours survives from one transaction to the next.
	TransactionPooling bool          `envconfig:"DATABASE_TRANSACTION_POOLING" default:"false"`
	MaxConnLifetime    time.Duration `envconfig:"DATABASE_MAX_CONN_LIFETIME" default:"30m"`
	MaxConnIdleTime    time.Duration `envconfig:"DATABASE_MAX_CONN_IDLE_TIME" default:"5m"`
}

var queryExecModes = map[string]pgx.QueryExecMode{
	"cache_statement": pgx.QueryExecModeCacheStatement,
	"cache_describe":  pgx.QueryExecModeCacheDescribe,
	"describe_exec":   pgx.QueryExecModeDescribeExec,
	"exec":            pgx.QueryExecModeExec,
	"simple_protocol": pgx.QueryExecModeSimpleProtocol,
}

func (c Config) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("URL is empty"))
	}
	if c.MaxConns < 1 {
		errs = append(errs, fmt.Errorf("MaxConns %d: must be at least 1", c.MaxConns))
	}
	if c.MinConns < 0 || c.MinConns > c.MaxConns {
		errs = append(errs, fmt.Errorf("MinConns %d: must be between 0 and MaxConns (%d)", c.MinConns, c.MaxConns))
	}
	if c.ConnectTimeout < 0 || c.MaxConnLifetime < 0 || c.MaxConnIdleTime < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	// The server counts in milliseconds; a shorter positive value would
	// silently become 0, which means no timeout at all.
	if c.StatementTimeout != 0 && c.StatementTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("StatementTimeout %s: must be 0 (server default) or at least 1ms", c.StatementTimeout))
	}
	if _, ok := queryExecModes[c.QueryExecMode]; !ok {
		errs = append(errs, fmt.Errorf("QueryExecMode %q: want one of cache_statement, cache_describe, describe_exec, exec, simple_protocol", c.QueryExecMode))
	}
	// cache_statement fails behind a transaction pooler (42P05: the named
	// statement exists on one server connection and not on the next), and
	// describe_exec may describe on one server connection and execute on
	// another: refuse both at start rather than on some later request.
	if c.TransactionPooling && (c.QueryExecMode == "cache_statement" || c.QueryExecMode == "describe_exec") {
		errs = append(errs, fmt.Errorf("QueryExecMode %q does not work with TransactionPooling: use exec, simple_protocol or cache_describe", c.QueryExecMode))
	}
	if c.TransactionPooling && c.StatementTimeout != 0 {
		errs = append(errs, fmt.Errorf("StatementTimeout %s cannot be sent through a transaction pooler: set it 0 and on the server, ALTER ROLE <role> SET statement_timeout = '%s' (see pg.Open)", c.StatementTimeout, c.StatementTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pg: invalid config: %w", err)
	}
	return nil
}

// DB is the pair of pools a function uses: writes and read-your-write reads
// go to Primary, other reads may go to Replica.
type DB struct {
	Primary *pgxpool.Pool
	// Replica is the same pool as Primary when no ReadURL is configured.
	Replica *pgxpool.Pool
}

// Open validates cfg and creates the pools. Connections are made lazily,
// so a database that is briefly unreachable at start does not fail Open;
// Ping tells readiness.
//
// The statement timeout is a startup parameter (RuntimeParams): a session
// default the server enforces on every statement, at no cost per
// statement. Behind a transaction pooler no session setting can be ours:
// PgBouncer refuses the startup parameter, and a SET would land on
// whichever server connection serves that one transaction, changing it for
// other clients and not for us. SET LOCAL would need a transaction around
// every read, and a client-side deadline needs cancel requests, which
// PgBouncer 1.18 (Debian 12) can crash on when pgx closes the cancel
// connection early. So there the timeout belongs to the server connections
// PgBouncer opens: ALTER ROLE <app role> SET statement_timeout = '5s' (or
// ALTER DATABASE), and StatementTimeout must be 0 (validate says so).
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	primary, err := newPool(ctx, cfg, cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("pg: primary: %w", err)
	}
	if cfg.ReadURL == "" {
		return &DB{Primary: primary, Replica: primary}, nil
	}
	replica, err := newPool(ctx, cfg, cfg.ReadURL)
	if err != nil {
		primary.Close()
		return nil, fmt.Errorf("pg: replica: %w", err)
	}
	return &DB{Primary: primary, Replica: replica}, nil
}

func newPool(ctx context.Context, cfg Config, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err // pgx redacts the password in its parse errors
	}
	pc.MaxConns = cfg.MaxConns
	pc.MinConns = cfg.MinConns
	pc.MaxConnLifetime = cfg.MaxConnLifetime
	pc.MaxConnIdleTime = cfg.MaxConnIdleTime
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	pc.ConnConfig.DefaultQueryExecMode = queryExecModes[cfg.QueryExecMode]
	if cfg.StatementTimeout > 0 {
		pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	}
	return pgxpool.NewWithConfig(ctx, pc)
}

// Close closes both pools, the shared one once.
func (db *DB) Close() {
	db.Primary.Close()
	if db.Replica != db.Primary {
		db.Replica.Close()
	}
}

// Ping checks both pools can reach their server, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.Primary.Ping(ctx); err != nil {
		return fmt.Errorf("pg: ping primary: %w", err)
	}
	if db.Replica != db.Primary {
		if err := db.Replica.Ping(ctx); err != nil {
			return fmt.Errorf("pg: ping replica: %w", err)
		}
	}
	return nil
}

// Also is work a store runs in one of its writes' own transaction, after
// the write, given what was written (or, for a write that changed nothing,
// what is there): statements that must commit or roll back with the write,
// such as a command's receipt (shared/ingest). Its error aborts the write
// and is returned as is. nil runs nothing.
type Also[T any] func(ctx context.Context, tx pgx.Tx, written T) error

// Run runs a in tx after a write that returned err: nothing when err is
// set or a is nil.
func (a Also[T]) Run(ctx context.Context, tx pgx.Tx, written T, err error) error {
	if err != nil || a == nil {
		return err
	}
	return a(ctx, tx, written)
}

// InTx runs fn in a transaction on pool: it commits when fn returns nil and
// rolls back otherwise, returning fn's error unwrapped so callers can
// compare sentinels. It, and InTxBatched, are the one way this code opens
// transactions.
//
// A connection lost before COMMIT takes the transaction with it: the
// error is Transient (a 503, retry). A connection lost, or a deadline
// passed, while COMMIT was under way leaves the outcome to be found out:
// the server may have committed and failed only to say so. InTx learns the
// transaction's id just before COMMIT (in the round trip of InTxBatched's
// tail; NULL when the transaction wrote nothing) and then asks the server
// (resolve): committed is success, rolled back the Transient error it was;
// ErrCommitUnknown if the server cannot say within resolveWait.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return InTxBatched(ctx, pool, nil, func(tx pgx.Tx, _ *pgx.Batch) error { return fn(tx) })
}

// InTxBatched is InTx in fewer round trips, for the hot writes. BEGIN goes
// to the server together with first's queries (nil: none), whose callbacks
// run before fn; their errors are returned as they are. fn may queue on
// tail what only has to succeed, or is read by a callback, such as the
// history and outbox rows of a write: the tail goes in one round trip with
// the commit check, before COMMIT. A create of a read, an insert and two
// more inserts so takes three round trips instead of seven.
func InTxBatched(ctx context.Context, pool *pgxpool.Pool, first *pgx.Batch, fn func(tx pgx.Tx, tail *pgx.Batch) error) error {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if first != nil {
		b.QueuedQueries = append(b.QueuedQueries, first.QueuedQueries...)
	}
	br := pool.SendBatch(ctx, b)
	tx := br.Tx()
	// Also covers a panic in fn; after Commit it is a no-op. It returns
	// the connection to the pool also when BEGIN failed.
	defer func() { _ = tx.Rollback(ctx) }()
	if err := br.Close(); err != nil {
		if first == nil || len(first.QueuedQueries) == 0 {
			return fmt.Errorf("pg: begin: %w", err)
		}
		return err
	}
	tail := &pgx.Batch{}
	if err := fn(tx, tail); err != nil {
		return err
	}
	// NULL when the transaction wrote nothing: then no outcome is at
	// stake. The _if_assigned form also works on a replica, where no id
	// is assigned.
	var xid *string
	tail.Queue(`SELECT pg_current_xact_id_if_assigned()::text`).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&xid); err != nil {
			return fmt.Errorf("pg: before commit: %w", err)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, tail).Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		if xid != nil && (lost(err) || pgconn.Timeout(err) || errors.Is(err, context.Canceled)) {
			return resolve(ctx, pool, *xid, err)
		}
		return fmt.Errorf("pg: commit: %w", err)
	}
	return nil
}

// resolveWait bounds how long InTx waits to learn whether a commit it lost
// sight of happened: long enough for a PostgreSQL or PgBouncer restart,
// short of a client's patience.
const resolveWait = 10 * time.Second

// resolve finds out whether transaction xid, whose COMMIT failed with
// cause, committed: nil if it did, cause (Transient) if it was rolled
// back, ErrCommitUnknown if the server does not say within resolveWait. It
// asks on connections of pool, which the lost one has left, and waits out
// "in progress": the server may not have finished, or even received, the
// COMMIT. It goes on when the caller has gone: whether the write happened
// still decides what the caller's process does next (refresh its cache).
func resolve(ctx context.Context, pool *pgxpool.Pool, xid string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), resolveWait)
	defer cancel()
	const q = `SELECT pg_xact_status($1::xid8)`
	for {
		var status *string // NULL: too old to know, not a case within seconds
		err := pool.QueryRow(ctx, q, xid).Scan(&status)
		switch {
		case err == nil && status != nil && *status == "committed":
			zerolog.Ctx(ctx).Warn().Err(cause).Str("db.transaction.id", xid).Msg("pg: the answer to COMMIT was lost; the server says it committed")
			return nil
		case err == nil && status != nil && *status == "aborted":
			return fmt.Errorf("pg: commit: rolled back: %w", cause)
		case err == nil && status == nil:
			return fmt.Errorf("pg: commit of transaction %s: %w: too old to tell, after %w", xid, ErrCommitUnknown, cause)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg: commit of transaction %s: %w after %s (%v), after %w", xid, ErrCommitUnknown, resolveWait, err, cause)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
