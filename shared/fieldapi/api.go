// Package fieldapi is the HTTP API of custom field definitions (issue
// #22, docs/custom-fields.md): POST and GET /projects/{key}/fields, GET,
// PATCH and DELETE /projects/{key}/fields/{id}, one route per function.
// Who may do what is field's policy (field.CheckSee, CheckManage) on the
// caller's project.Access: a project the caller may not see answers 404.
package fieldapi

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/julienschmidt/httprouter"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
)

// Deps is what the routes are built on. Cache, the task cache, is what
// update-field and delete-field refresh: the cache holds tasks as they
// read, values by field name, so a rename or a delete changes how every
// cached task of the project reads (cache.FieldsChanged). The other three
// routes neither need nor link it.
type Deps struct {
	Store *field.Store
	Roles *project.Resolver
	Cache *cache.Cache
}

// API holds what the handlers run on.
type API struct {
	store *field.Store
	roles *project.Resolver
	cache *cache.Cache
}

// Constructor is one route's constructor; NeedsCache says whether its
// Deps must hold the task cache.
type Constructor struct {
	NeedsCache bool
	build      func(*auth.Gate, Deps) (httpx.Route, error)
}

// Build returns the route on g and d.
func (c Constructor) Build(g *auth.Gate, d Deps) (httpx.Route, error) { return c.build(g, d) }

func route(name, method, path string, needsCache bool, h func(*API) httpx.HandlerFunc) Constructor {
	return Constructor{NeedsCache: needsCache, build: func(g *auth.Gate, d Deps) (httpx.Route, error) {
		if g == nil || d.Store == nil || d.Roles == nil || (needsCache && d.Cache == nil) {
			return httpx.Route{}, fmt.Errorf("fieldapi: %s: %w", name, function.ErrMissing)
		}
		a := &API{store: d.Store, roles: d.Roles, cache: d.Cache}
		return g.Route(name, method, path, h(a)), nil
	}}
}

// The routes, one per function.
var (
	CreateRoute = route("create-field", http.MethodPost, "/projects/:key/fields", false, func(a *API) httpx.HandlerFunc { return a.create })
	ListRoute   = route("list-fields", http.MethodGet, "/projects/:key/fields", false, func(a *API) httpx.HandlerFunc { return a.list })
	GetRoute    = route("get-field", http.MethodGet, "/projects/:key/fields/:id", false, func(a *API) httpx.HandlerFunc { return a.get })
	UpdateRoute = route("update-field", http.MethodPatch, "/projects/:key/fields/:id", true, func(a *API) httpx.HandlerFunc { return a.update })
	DeleteRoute = route("delete-field", http.MethodDelete, "/projects/:key/fields/:id", true, func(a *API) httpx.HandlerFunc { return a.delete })
)

// Routes are all five, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, d Deps) ([]httpx.Route, error) {
	var out []httpx.Route
	for _, r := range []Constructor{CreateRoute, ListRoute, GetRoute, UpdateRoute, DeleteRoute} {
		rt, err := r.Build(g, d)
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

// key reads the {key} path segment; a malformed key names no project.
func key(r *http.Request) (string, error) {
	k := httprouter.ParamsFromContext(r.Context()).ByName("key")
	if !project.ValidKey(k) {
		return "", project.ErrNotFound
	}
	return k, nil
}

// id reads the {id} path segment; anything but a positive decimal names
// no field.
func id(r *http.Request) (int64, error) {
	s := httprouter.ParamsFromContext(r.Context()).ByName("id")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != s {
		return 0, field.ErrNotFound
	}
	return n, nil
}

// decide runs check on the caller's access to project k (decided again on
// fresh roles when cached ones refuse, so a grant counts at once).
func (a *API) decide(r *http.Request, k string, check func(project.Access, string) error) error {
	return a.roles.Decide(r.Context(), auth.Caller(r), func(acc project.Access) error { return check(acc, k) })
}

func writeField(w http.ResponseWriter, status int, d field.Definition) {
	w.Header().Set("ETag", httpx.ETag(d.Version))
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, status, d)
}

// noQuery refuses any query parameter: these routes take none.
func noQuery(r *http.Request) error {
	v, err := httpx.Query(r)
	if err != nil {
		return err
	}
	for k := range v {
		return httpx.BadRequest(fmt.Sprintf("unknown query parameter %q", k))
	}
	return nil
}

// POST /projects/{key}/fields
func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	if err := a.decide(r, k, field.CheckManage); err != nil {
		return err
	}
	in, err := field.ParseInput(body)
	if err != nil {
		return err
	}
	draft, err := field.Draft(in, k, auth.Caller(r).Subject)
	if err != nil {
		return err
	}
	created, err := a.store.Create(r.Context(), draft)
	if err != nil {
		return err
	}
	w.Header().Set("Location", fmt.Sprintf("/projects/%s/fields/%d", k, created.ID))
	writeField(w, http.StatusCreated, created)
	return nil
}

// GET /projects/{key}/fields: {"items": [fields]}, in position order; at
// most field.MaxPerProject, so never paged.
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	k, err := key(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	if err := a.decide(r, k, field.CheckSee); err != nil {
		return err
	}
	set, err := a.store.List(r.Context(), k)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, struct {
		Items field.Set `json:"items"`
	}{set})
	return nil
}

// fieldsChanged drops the cached tasks after a rename or a delete. The
// change is committed, so a Redis that does not take it fails nothing:
// the cache then serves this process from the primary until it does
// (cache.FieldsChanged), and the warning says so.
func (a *API) fieldsChanged(r *http.Request) {
	if err := a.cache.FieldsChanged(r.Context()); err != nil {
		zerolog.Ctx(r.Context()).Warn().Err(err).Msg("fieldapi: task cache not invalidated; the answer goes on")
	}
}

// target reads the path's {key} and {id} once the caller passes check on
// the project: a field of a project the caller may not see is not found.
func (a *API) target(r *http.Request, check func(project.Access, string) error) (string, int64, error) {
	k, err := key(r)
	if err != nil {
		return "", 0, err
	}
	if err := a.decide(r, k, check); err != nil {
		return "", 0, err
	}
	n, err := id(r)
	return k, n, err
}

// unchanged is If-Match's check on the current definition: nil when the
// header is absent (optional, as for projects), 412 on another version.
func unchanged(ifMatch *httpx.Condition, cur field.Definition) error {
	if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
		return field.ErrVersionMismatch
	}
	return nil
}

// GET /projects/{key}/fields/{id}
func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	k, n, err := a.target(r, field.CheckSee)
	if err != nil {
		return err
	}
	d, err := a.store.Get(r.Context(), k, n)
	if err != nil {
		return err
	}
	writeField(w, http.StatusOK, d)
	return nil
}

// PATCH /projects/{key}/fields/{id}: an RFC 7396 merge patch, If-Match
// honoured.
func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadBody(w, r, "application/merge-patch+json", "application/json")
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	k, n, err := a.target(r, field.CheckManage)
	if err != nil {
		return err
	}
	in, err := field.ParseInput(body)
	if err != nil {
		return err
	}
	renamed := false
	updated, err := a.store.Update(r.Context(), k, n, func(cur field.Definition) (field.Definition, error) {
		if err := unchanged(ifMatch, cur); err != nil {
			return cur, err
		}
		next, err := in.Apply(cur)
		renamed = next.Name != cur.Name
		return next, err
	})
	if err != nil {
		return err
	}
	// Cached tasks show values under the old name: after the commit,
	// before the answer, so the caller's next GET of a task reads the new.
	if renamed {
		a.fieldsChanged(r)
	}
	writeField(w, http.StatusOK, updated)
	return nil
}

// DELETE /projects/{key}/fields/{id}, If-Match honoured: the field is
// hidden at once, its values purged by cleanup later.
func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	k, n, err := a.target(r, field.CheckManage)
	if err != nil {
		return err
	}
	err = a.store.Delete(r.Context(), k, n, func(cur field.Definition) error { return unchanged(ifMatch, cur) })
	if err != nil {
		return err
	}
	// Cached tasks still show the field's values: gone with the commit.
	a.fieldsChanged(r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
