package httpx

import (
	"context"
	"net/http"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/pg"
)

// HandlerFunc is a handler that returns its failure for Handle to render.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ProblemFunc is a package's table from its own errors to problems; nil
// means "not one of mine".
type ProblemFunc func(ctx context.Context, err error) *Problem

// Handle serves f and renders its error: a *Problem as it is, then what
// problem knows, then a transient database failure as 503 (retry), and
// anything else as a 500 whose cause is logged, never shown.
func Handle(problem ProblemFunc, f HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			WriteProblem(w, r, problemOf(r.Context(), problem, err))
		}
	})
}

func problemOf(ctx context.Context, problem ProblemFunc, err error) *Problem {
	if p := AsProblem(err); p != nil {
		return p
	}
	if p := problem(ctx, err); p != nil {
		return p
	}
	if pg.Transient(err) {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("dependency unavailable")
		p := Unavailable("the database is busy or unreachable; retry shortly")
		p.Header = http.Header{"Retry-After": {"1"}}
		return p
	}
	zerolog.Ctx(ctx).Error().Err(err).Msg("request failed")
	return Internal()
}
