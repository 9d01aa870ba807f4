package taskapi

import (
	"context"
	"errors"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// problemFor is the one table from the task domain's errors to problem
// responses; httpx.Handle takes care of the rest (transient database
// failures 503, anything unknown a logged 500).
func problemFor(ctx context.Context, err error) *httpx.Problem {
	var (
		ve *task.ValidationError
		se *task.SyntaxError
		fe *task.ForbiddenError
	)
	switch {
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
	}
	return nil
}
