package report

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// API serves the report routes, behind a gate that verified the token and
// a task role. A report covers the tasks its requester could list when
// asking (task.ScopeOf, recorded with it), and only the requester reads it:
// anyone else gets 404, as for a task they may not see.
type API struct {
	store  *Store
	roles  *project.Resolver // request-report's: the scope it records
	limits Limits
	now    func() time.Time
}

func newAPI(route string, g *auth.Gate, store *Store) (*API, error) {
	if g == nil || store == nil {
		return nil, fmt.Errorf("report: %s: %w", route, function.ErrMissing)
	}
	return &API{store: store, now: time.Now}, nil
}

// RequestRoute is POST /reports, the request-report function, within
// limits.
func RequestRoute(g *auth.Gate, store *Store, roles *project.Resolver, limits Limits) (httpx.Route, error) {
	a, err := newAPI("request-report", g, store)
	if err != nil {
		return httpx.Route{}, err
	}
	if roles == nil {
		return httpx.Route{}, fmt.Errorf("report: request-report: %w", function.ErrMissing)
	}
	a.limits, a.roles = limits, roles
	return g.Route("request-report", http.MethodPost, "/reports", a.request), nil
}

// GetRoute is GET /reports/{id}, the get-report function.
func GetRoute(g *auth.Gate, store *Store) (httpx.Route, error) {
	a, err := newAPI("get-report", g, store)
	if err != nil {
		return httpx.Route{}, err
	}
	return g.Route("get-report", http.MethodGet, "/reports/:id", a.get), nil
}

// ContentRoute is GET /reports/{id}/content, the get-report-content function.
func ContentRoute(g *auth.Gate, store *Store) (httpx.Route, error) {
	a, err := newAPI("get-report-content", g, store)
	if err != nil {
		return httpx.Route{}, err
	}
	return g.Route("get-report-content", http.MethodGet, "/reports/:id/content", a.content), nil
}

// Routes are all three, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, store *Store, roles *project.Resolver, limits Limits) ([]httpx.Route, error) {
	req, err := RequestRoute(g, store, roles, limits)
	if err != nil {
		return nil, err
	}
	get, err := GetRoute(g, store)
	if err != nil {
		return nil, err
	}
	content, err := ContentRoute(g, store)
	if err != nil {
		return nil, err
	}
	return []httpx.Route{req, get, content}, nil
}

// POST /reports
func (a *API) request(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	req, err := ParseRequest(body, a.now())
	if err != nil {
		return err
	}
	// Read now, not from the cache: a report records the scope it was
	// asked with, so a role given a moment ago must be in it.
	acc, err := a.roles.Fresh(r.Context(), auth.Caller(r))
	if err != nil {
		return err
	}
	if req.Kind == KindProjectAnalytics {
		if err := a.mayAnalyse(r.Context(), acc, req.Project); err != nil {
			return err
		}
	}
	rep, err := a.store.Create(r.Context(), req, acc.ID.Subject, task.ScopeOf(acc), a.limits)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Location(rep.ID))
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteJSON(w, http.StatusAccepted, rep.View())
	return nil
}

// mayAnalyse decides whether a caller with acc may ask for key's
// analytics: whoever the list shows the project's tasks to (task.CanSeeIn:
// admins, managers, and members with a role in it). Anyone else gets 404,
// as for the project itself, so a project's existence never leaks; its
// tasks assigned to a non-member are not enough, since analytics describe
// the whole project. The worker narrows to the recorded scope all the same.
func (a *API) mayAnalyse(ctx context.Context, acc project.Access, key string) error {
	if !task.CanSeeIn(acc, key, nil) {
		return project.ErrNotFound
	}
	if acc.SeesAll() { // a role in it proves it exists; for these, look
		return a.store.projectExists(ctx, key)
	}
	return nil
}

// own returns the report named in the path if the caller requested it.
func (a *API) own(r *http.Request) (Report, error) {
	id, err := uuid.Parse(httprouter.ParamsFromContext(r.Context()).ByName("id"))
	if err != nil {
		return Report{}, ErrNotFound // a malformed id names no report
	}
	rep, err := a.store.Get(r.Context(), id)
	if err != nil {
		return Report{}, err
	}
	if rep.RequestedBy != auth.Caller(r).Subject {
		return Report{}, ErrNotFound
	}
	return rep, nil
}

// GET /reports/{id}
func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.own(r)
	if err != nil {
		return err
	}
	if rep.Status == StatusPending || rep.Status == StatusRunning {
		w.Header().Set("Retry-After", "2")
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, rep.View())
	return nil
}

// GET /reports/{id}/content streams the stored chunks one at a time, so a
// download holds one chunk however large the report.
func (a *API) content(w http.ResponseWriter, r *http.Request) error {
	rep, err := a.own(r)
	if err != nil {
		return err
	}
	if rep.Status != StatusSucceeded || rep.Chunks == nil || rep.ContentBytes == nil {
		return errNotReady
	}
	// The first chunk is read before any header is written, so a database
	// failure is still a proper problem response.
	var first []byte
	if *rep.Chunks > 0 {
		if first, err = a.store.Chunk(r.Context(), rep, 0); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Content-Type", rep.Request.Format.ContentType())
	h.Set("Content-Length", strconv.FormatInt(*rep.ContentBytes, 10))
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.%s"`, rep.Request.Kind, rep.ID, rep.Request.Format.extension()))
	h.Set("Cache-Control", "private, max-age=0")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(first); err != nil {
		return nil // the client went away
	}
	for seq := 1; seq < *rep.Chunks; seq++ {
		data, err := a.store.Chunk(r.Context(), rep, seq)
		if err != nil {
			// Too late for a problem: cut the response short, so the
			// client sees a body shorter than Content-Length.
			zerolog.Ctx(r.Context()).Error().Err(err).Int("seq", seq).Msg("report download cut short")
			panic(http.ErrAbortHandler)
		}
		if _, err := w.Write(data); err != nil {
			return nil
		}
	}
	return nil
}
