package pg_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// TestInTxConnectionLost cuts the connection under InTx, through a proxy
// between the pool and the server, at three points: mid-transaction, at
// COMMIT before it reaches the server, and at COMMIT after the server got
// it (it commits and the client never hears). The first two leave nothing
// and are Transient (503, retry); the third is a success, which InTx learns
// by asking the server.
func TestInTxConnectionLost(t *testing.T) {
	t.Parallel()
	direct := pgtest.NewEmpty(t) // the proxy needs the server itself, not PgBouncer
	ctx := t.Context()
	setup, err := pgx.Connect(ctx, direct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Exec(ctx, "CREATE TABLE marks (name text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	_ = setup.Close(ctx)

	tests := []struct {
		name    string
		at      string // the statement at which the connection is cut
		forward bool   // pass it on to the server first
		wantRow bool
	}{
		{"mid-transaction", "INSERT", false, false},
		{"commit not sent", "commit", false, false},
		{"commit sent, answer lost", "commit", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startCutter(t, direct, tt.at, tt.forward)
			db, err := pg.Open(ctx, config(p.url))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = pg.InTx(ctx, db.Primary, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, "INSERT INTO marks VALUES ($1)", tt.name)
				return err
			})
			if !p.cut.Load() {
				t.Fatalf("the proxy never cut the connection (err %v)", err)
			}
			switch {
			case tt.wantRow && err != nil:
				t.Errorf("InTx: %v; want success, the commit happened", err)
			case !tt.wantRow && (err == nil || !pg.Transient(err) || errors.Is(err, pg.ErrCommitUnknown)):
				t.Errorf("InTx: %v; want a Transient error", err)
			}
			// Counted on a connection of its own to the server: the pool's
			// others go through the proxy, which may cut one of them too.
			check, cerr := pgx.Connect(ctx, direct)
			if cerr != nil {
				t.Fatal(cerr)
			}
			defer check.Close(ctx)
			var n int
			if err := check.QueryRow(ctx, "SELECT count(*) FROM marks WHERE name = $1", tt.name).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if (n == 1) != tt.wantRow {
				t.Errorf("%d rows after InTx returned %v", n, err)
			}
		})
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection reset", fmt.Errorf("q: %w", &net.OpError{Op: "read", Err: syscall.ECONNRESET}), true},
		{"EOF mid-message", fmt.Errorf("outbox: add: %w", io.ErrUnexpectedEOF), true},
		{"closed by pgx after a failed read", fmt.Errorf("pg: begin: %w", pgconn.ErrConnClosed), true},
		{"session ended by the server", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		{"connection exception from PgBouncer", &pgconn.PgError{Severity: "ERROR", Code: "08P01"}, true},
		{"serialization failure", &pgconn.PgError{Severity: "ERROR", Code: "40001"}, true},
		{"commit outcome unknown", fmt.Errorf("pg: %w after %w", pg.ErrCommitUnknown, io.ErrUnexpectedEOF), false},
		{"unique violation", &pgconn.PgError{Severity: "ERROR", Code: "23505"}, false},
		{"no rows", pgx.ErrNoRows, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := pg.Transient(tt.err); got != tt.want {
				t.Errorf("Transient(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
}

// cutter is a proxy to a PostgreSQL server that, once, cuts the client's
// connection when the client sends a statement starting with at: before
// passing it on, or after (forward).
type cutter struct {
	url string
	cut atomic.Bool
}

func startCutter(t *testing.T, server, at string, forward bool) *cutter {
	t.Helper()
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	c := &cutter{}
	target := u.Host
	u.Host = ln.Addr().String()
	c.url = u.String()
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { c.serve(client, target, at, forward) })
		}
	})
	return c
}

func (c *cutter) serve(client net.Conn, target, at string, forward bool) {
	defer client.Close()
	server, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server); _ = client.Close() }()

	// The startup message has no type byte: a length, then the rest.
	var n [4]byte
	if _, err := io.ReadFull(client, n[:]); err != nil {
		return
	}
	startup := make([]byte, binary.BigEndian.Uint32(n[:]))
	copy(startup, n[:])
	if _, err := io.ReadFull(client, startup[4:]); err != nil {
		return
	}
	if _, err := server.Write(startup); err != nil {
		return
	}
	for {
		// Then messages: a type byte, a length counting itself, the body.
		var h [5]byte
		if _, err := io.ReadFull(client, h[:]); err != nil {
			return
		}
		msg := make([]byte, 1+binary.BigEndian.Uint32(h[1:]))
		copy(msg, h[:])
		if _, err := io.ReadFull(client, msg[5:]); err != nil {
			return
		}
		if statement(msg) != "" && strings.HasPrefix(statement(msg), at) && c.cut.CompareAndSwap(false, true) {
			if forward {
				_, _ = server.Write(msg)
			}
			return // closes both: the server rolls back, or commits what it got
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// statement is the SQL of a simple query ('Q') or a parse ('P') message.
func statement(msg []byte) string {
	body := msg[5:]
	switch msg[0] {
	case 'Q':
	case 'P': // statement name, then the query
		i := strings.IndexByte(string(body), 0)
		if i < 0 {
			return ""
		}
		body = body[i+1:]
	default:
		return ""
	}
	s, _, _ := strings.Cut(string(body), "\x00")
	return s
}
