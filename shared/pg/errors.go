package pg

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// Transient reports database failures a retry may cure: timeouts,
// cancelled statements, unreachable or restarting servers, serialization
// failures and deadlocks. Callers answer them 503, so clients (and
// KafkaSource) retry.
func Transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
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
