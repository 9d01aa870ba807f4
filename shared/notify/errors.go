package notify

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// handlerFunc is a handler that returns its failure; ServeHTTP renders it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		httpx.WriteProblem(w, r, problemFor(r.Context(), err))
	}
}

// problemFor is the one table from this package's errors to problem
// responses, for the inbox routes and the sink alike. For the sink the
// status is the retry decision: 4xx is never retried, 5xx is.
func problemFor(ctx context.Context, err error) *httpx.Problem {
	switch {
	case httpx.AsProblem(err) != nil:
		return httpx.AsProblem(err)
	case errors.Is(err, ErrNotFound):
		return httpx.NotFound()
	case errors.Is(err, task.ErrBadCursor):
		return httpx.BadRequest("cursor is not valid; use the next_cursor of a previous page")
	case errors.Is(err, ErrPoison):
		zerolog.Ctx(ctx).Warn().Err(err).Msg("unprocessable event")
		return httpx.NewProblem(http.StatusBadRequest, "unprocessable-event", "Unprocessable event", err.Error())
	case errors.Is(err, errMailUnavailable):
		zerolog.Ctx(ctx).Warn().Err(err).Msg("email not sent; the event will be redelivered")
		p := httpx.Unavailable("the mail server cannot take the email now; redeliver the event")
		p.Header = http.Header{"Retry-After": {"5"}}
		return p
	case transient(err):
		zerolog.Ctx(ctx).Warn().Err(err).Msg("dependency unavailable")
		p := httpx.Unavailable("a dependency is busy or unreachable; retry shortly")
		p.Header = http.Header{"Retry-After": {"1"}}
		return p
	}
	zerolog.Ctx(ctx).Error().Err(err).Msg("request failed")
	return httpx.Internal()
}

// transient reports failures a retry may cure: timeouts, cancelled
// statements, unreachable servers.
func transient(err error) bool {
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
