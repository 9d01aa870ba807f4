package taskapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// handlerFunc is a handler that returns its failure; serve renders it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (f handlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		httpx.WriteProblem(w, r, problemFor(r.Context(), err))
	}
}

// problemFor is the one table from the errors of the domain and the
// database to problem responses. Anything unknown is a 500 whose cause is
// logged, never shown.
func problemFor(ctx context.Context, err error) *httpx.Problem {
	var (
		ve *task.ValidationError
		se *task.SyntaxError
		fe *task.ForbiddenError
	)
	switch {
	case httpx.AsProblem(err) != nil:
		return httpx.AsProblem(err)
	case errors.Is(err, task.ErrNotFound):
		return httpx.NotFound()
	case errors.Is(err, task.ErrVersionMismatch):
		return httpx.PreconditionFailed("the task has changed since the version named in If-Match; fetch it again")
	case errors.Is(err, task.ErrBadCursor):
		return httpx.BadRequest("cursor is not valid; use the next_cursor of a previous page")
	case errors.As(err, &ve):
		fields := make([]httpx.FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Detail: f.Detail}
		}
		return httpx.Validation(fields...)
	case errors.As(err, &se):
		return httpx.BadRequest(se.Detail)
	case errors.As(err, &fe):
		return httpx.Forbidden(fe.Reason)
	case transient(err):
		zerolog.Ctx(ctx).Warn().Err(err).Msg("dependency unavailable")
		p := httpx.Unavailable("the database is busy or unreachable; retry shortly")
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
