package pg

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrCommitUnknown is returned by InTx when the connection was lost while
// COMMIT was under way and the server could not be asked, within
// resolveWait, whether the transaction committed: it may have. It is not
// Transient: answering "retry" could make a client repeat a change that
// happened.
var ErrCommitUnknown = errors.New("pg: commit outcome unknown")

// Transient reports database failures a retry may cure: timeouts,
// cancelled statements, unreachable or restarting servers, a connection
// lost mid-transaction (the server or PgBouncer went away, and the
// transaction with it), serialization failures and deadlocks. Callers
// answer them 503, so clients (and KafkaSource) retry. ErrCommitUnknown
// is not transient.
func Transient(err error) bool {
	if errors.Is(err, ErrCommitUnknown) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || lost(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57014", "57P01", "57P03", "53300", "40001", "40P01": // query_canceled, admin_shutdown, cannot_connect_now, too_many_connections, serialization, deadlock
			return true
		}
	}
	return false
}

// lost reports an error after which the connection is gone: the server or
// PgBouncer closed or reset it, or ended the session (FATAL, or a
// connection exception, class 08). pgx then reports the read that failed
// (EOF), the write (EPIPE, ECONNRESET) or, for a later use of the
// connection it closed meanwhile, pgconn.ErrConnClosed. Whatever
// transaction was open on it is rolled back by the server, unless it was
// committing (see InTx).
func lost(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Severity == "FATAL" || pe.Severity == "PANIC" || strings.HasPrefix(pe.Code, "08")
	}
	for _, e := range []error{pgconn.ErrConnClosed, io.EOF, io.ErrUnexpectedEOF, net.ErrClosed, syscall.ECONNRESET, syscall.EPIPE, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
