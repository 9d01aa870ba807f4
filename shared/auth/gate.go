package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
)

// SeenFunc is told of every caller a Gate lets through (the people
// directory remembers them). Its failure is logged and the request goes on:
// such a hook only improves later work, it must not fail the API.
type SeenFunc func(context.Context, Identity) error

// LimitFunc is asked by a Gate about every request it authenticated,
// before anything else runs (shared/ratelimit's hooks): nil lets the
// request on, an error is its answer (errs.TooMany: 429 with Retry-After).
// It may set response headers on w either way.
type LimitFunc func(w http.ResponseWriter, r *http.Request, id Identity) error

// Gate mounts authenticated routes: every route built by Route verifies the
// bearer token, needs one of the gate's roles, asks the gate's limit, tells
// the seen hooks, and renders the handler's error through httpx.ProblemOf.
// Each route of each function is mounted through a Gate, so none can forget
// a check; what the caller may do to a particular object is the handler's
// to decide.
type Gate struct {
	v     *Verifier
	roles []Role
	seen  []SeenFunc
	limit LimitFunc
}

// NewGate returns a gate verifying with v, letting through callers with at
// least one of roles (any valid caller when roles is empty).
func NewGate(v *Verifier, roles []Role, seen ...SeenFunc) (*Gate, error) {
	if v == nil {
		return nil, errors.New("auth: NewGate needs a verifier")
	}
	return &Gate{v: v, roles: slices.Clone(roles), seen: slices.Clone(seen)}, nil
}

// WithLimit returns a copy of g whose routes also ask limit (nil: none).
func (g *Gate) WithLimit(limit LimitFunc) *Gate {
	cp := *g
	cp.limit = limit
	return &cp
}

// Route is the route of function name: method and path served by h behind
// the gate.
func (g *Gate) Route(name, method, path string, h httpx.HandlerFunc) httpx.Route {
	next := httpx.Handle(h)
	if len(g.seen) > 0 {
		next = g.tell(next)
	}
	if g.limit != nil {
		// Before the seen hooks: a refused request costs no database write.
		next = limited(g.limit, next)
	}
	return httpx.Route{Name: name, Method: method, Path: path, Handler: g.v.Require(next, g.roles...)}
}

func limited(limit LimitFunc, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := limit(w, r, Caller(r)); err != nil {
			httpx.WriteProblem(w, r, httpx.ProblemOf(r.Context(), err))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *Gate) tell(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := Caller(r)
		for _, f := range g.seen {
			if err := f(r.Context(), id); err != nil {
				zerolog.Ctx(r.Context()).Warn().Err(err).Msg("auth: a seen hook failed; the request goes on")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// Caller is the verified caller of a request served behind Require (and so
// behind a Gate).
func Caller(r *http.Request) Identity {
	id, ok := FromContext(r.Context())
	if !ok {
		// Require always runs first; reaching here is a wiring bug.
		panic("auth: route mounted without authentication")
	}
	return id
}
