package report

import (
	"context"
	"errors"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
)

// errNotReady is content asked for before the report succeeded.
var errNotReady = errors.New("report content is not ready")

// problemFor is the one table from this package's errors to problem
// responses, for the API and the sink alike. For the sink the status is
// the retry decision: 4xx is never retried, 5xx is.
func problemFor(ctx context.Context, err error) *httpx.Problem {
	var (
		ve *ValidationError
		se *SyntaxError
	)
	switch {
	case errors.Is(err, ErrPoison):
		zerolog.Ctx(ctx).Warn().Err(err).Msg("unprocessable event")
		return httpx.NewProblem(http.StatusBadRequest, "unprocessable-event", "Unprocessable event", err.Error())
	case errors.Is(err, ErrNotFound):
		return httpx.NotFound()
	case errors.Is(err, errNotReady):
		return httpx.NewProblem(http.StatusConflict, "report-not-ready", "Report not ready",
			"the report has not succeeded; its status says why, or when to look again")
	case errors.Is(err, ErrTooMany):
		p := httpx.NewProblem(http.StatusTooManyRequests, "too-many-reports", "Too many reports",
			"you have as many unfinished reports as allowed; wait for one to finish")
		p.Header = http.Header{"Retry-After": {"30"}}
		return p
	case errors.Is(err, ErrBusy):
		p := httpx.Unavailable("another worker is building this report; redeliver later")
		p.Header = http.Header{"Retry-After": {"30"}}
		return p
	case errors.As(err, &ve):
		fields := make([]httpx.FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = httpx.FieldError{Field: f.Field, Detail: f.Detail}
		}
		return httpx.Validation(fields...)
	case errors.As(err, &se):
		return httpx.BadRequest(se.Detail)
	}
	return nil
}
