package httpx

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/pg"
)

// HandlerFunc is a handler that returns its failure for Handle to render.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle serves f and renders its error with ProblemOf.
func Handle(f HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			WriteProblem(w, r, ProblemOf(r.Context(), err))
		}
	})
}

// ProblemOf is the one table from a failure to its response, for every
// route and sink: a *Problem as it is; a validation error or an errs kind
// as its problem; a transient database failure as 503 (retry); anything
// else as a 500 whose cause is logged, never shown. For a sink the status
// is the retry decision: 4xx is never redelivered, 5xx is.
func ProblemOf(ctx context.Context, err error) *Problem {
	if p := AsProblem(err); p != nil {
		return p
	}
	var ve *errs.ValidationError
	if errors.As(err, &ve) {
		// errs.Fields keeps the list short; one built by hand may not be.
		fields, omitted := ve.Fields, ve.Omitted
		if len(fields) > errs.MaxFieldErrors {
			fields, omitted = fields[:errs.MaxFieldErrors], omitted+len(fields)-errs.MaxFieldErrors
		}
		p := Validation(fields...)
		p.ErrorsOmitted = omitted
		return p
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return kindProblem(ctx, e, err)
	}
	if pg.Transient(err) {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("dependency unavailable")
		return retryLater(Unavailable("the database is busy or unreachable; retry shortly"), time.Second)
	}
	zerolog.Ctx(ctx).Error().Err(err).Msg("request failed")
	return Internal()
}

// kinds gives each errs kind its status and default problem type.
var kinds = map[errs.Kind]struct {
	status      int
	slug, title string
}{
	errs.Invalid:      {http.StatusBadRequest, "bad-request", "Bad request"},
	errs.NotFound:     {http.StatusNotFound, "not-found", "Not found"},
	errs.Forbidden:    {http.StatusForbidden, "forbidden", "Forbidden"},
	errs.Conflict:     {http.StatusConflict, "conflict", "Conflict"},
	errs.Precondition: {http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"},
	errs.TooMany:      {http.StatusTooManyRequests, "too-many-requests", "Too many requests"},
	errs.Unavailable:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	errs.Poison:       {http.StatusBadRequest, "unprocessable-event", "Unprocessable event"},
}

func kindProblem(ctx context.Context, e *errs.Error, err error) *Problem {
	k, ok := kinds[e.Kind]
	if !ok {
		zerolog.Ctx(ctx).Error().Err(err).Msg("request failed: error of no known kind")
		return Internal()
	}
	slug, title, detail := k.slug, k.title, e.Detail
	if e.Slug != "" {
		slug, title = e.Slug, e.Title
	}
	switch e.Kind {
	case errs.Poison:
		// What was wrong with the event is in the wrapping message; the
		// sender only logs it, and a dead letter keeps it.
		detail = err.Error()
		zerolog.Ctx(ctx).Warn().Err(err).Msg("unprocessable event")
	case errs.Unavailable:
		zerolog.Ctx(ctx).Warn().Err(err).Msg("dependency unavailable")
		p := NewProblem(k.status, slug, title, detail)
		return retryLater(p, max(e.RetryAfter, time.Second))
	}
	p := NewProblem(k.status, slug, title, detail)
	if e.RetryAfter > 0 {
		p = retryLater(p, e.RetryAfter)
	}
	return p
}

// retryLater adds Retry-After, in whole seconds rounded up.
func retryLater(p *Problem, d time.Duration) *Problem {
	secs := int64((d + time.Second - 1) / time.Second)
	p.Header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	return p
}
