package notify

import (
	"context"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// problemFor is the one table from this package's errors to problem
// responses, for the inbox routes and the sink alike. For the sink the
// status is the retry decision: 4xx is never retried, 5xx is.
func problemFor(ctx context.Context, err error) *httpx.Problem {
	switch {
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
	}
	return nil
}
