// Package taskapi is the HTTP task API: the handlers behind POST /tasks,
// GET /tasks and GET|PATCH|DELETE /tasks/{id}, one route per function.
package taskapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/relation"
	"github.com/taskfn/taskfn/shared/task"
)

// API holds what the task handlers run on. Each route's constructor below
// takes only what its route uses, so a function wires nothing more; what
// the caller may do to a task is decided per task by the task package's
// policy, behind a gate that has verified the token and the role.
type API struct {
	store *task.Store
	// cache serves GET /tasks/{id}; the writes refresh it after commit.
	cache *cache.Cache
	// roles resolves callers' API-managed project roles.
	roles *project.Resolver
	// hist serves GET /tasks/{id}/activity.
	hist *activity.Store
	// rels serves the relation routes.
	rels *relation.Store
}

func missing(route string) error {
	return fmt.Errorf("taskapi: %s: %w", route, function.ErrMissing)
}

// CreateRoute is POST /tasks, the create-task function.
func CreateRoute(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("create-task")
	}
	a := &API{store: store, cache: c, roles: roles}
	return g.Route("create-task", http.MethodPost, "/tasks", a.create), nil
}

// GetRoute is GET /tasks/{id}, the get-task function: read through c.
func GetRoute(g *auth.Gate, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("get-task")
	}
	a := &API{cache: c, roles: roles}
	return g.Route("get-task", http.MethodGet, "/tasks/:id", a.get), nil
}

// ListRoute is GET /tasks, the list-tasks function.
func ListRoute(g *auth.Gate, store *task.Store, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || roles == nil {
		return httpx.Route{}, missing("list-tasks")
	}
	a := &API{store: store, roles: roles}
	return g.Route("list-tasks", http.MethodGet, "/tasks", a.list), nil
}

// UpdateRoute is PATCH /tasks/{id}, the update-task function.
func UpdateRoute(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("update-task")
	}
	a := &API{store: store, cache: c, roles: roles}
	return g.Route("update-task", http.MethodPatch, "/tasks/:id", a.update), nil
}

// DeleteRoute is DELETE /tasks/{id}, the delete-task function.
func DeleteRoute(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("delete-task")
	}
	a := &API{store: store, cache: c, roles: roles}
	return g.Route("delete-task", http.MethodDelete, "/tasks/:id", a.delete), nil
}

// Routes are all ten, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver, hist *activity.Store) ([]httpx.Route, error) {
	var routes []httpx.Route
	for _, r := range []func() (httpx.Route, error){
		func() (httpx.Route, error) { return CreateRoute(g, store, c, roles) },
		func() (httpx.Route, error) { return GetRoute(g, c, roles) },
		func() (httpx.Route, error) { return ListRoute(g, store, roles) },
		func() (httpx.Route, error) { return UpdateRoute(g, store, c, roles) },
		func() (httpx.Route, error) { return DeleteRoute(g, store, c, roles) },
		func() (httpx.Route, error) { return ActivityRoute(g, c, roles, hist) },
		func() (httpx.Route, error) { return BulkRoute(g, store, c, roles) },
		func() (httpx.Route, error) { return TrashRoute(g, store, roles) },
		func() (httpx.Route, error) { return RestoreRoute(g, store, c, roles) },
		func() (httpx.Route, error) { return PurgeRoute(g, store, c, roles) },
	} {
		route, err := r()
		if err != nil {
			return nil, err
		}
		routes = append(routes, route)
	}
	return routes, nil
}

// taskID parses the {id} path segment. A malformed id names no task.
func taskID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(httprouter.ParamsFromContext(r.Context()).ByName("id"))
	if err != nil {
		return uuid.Nil, task.ErrNotFound
	}
	return id, nil
}

func writeTask(w http.ResponseWriter, status int, t task.Task) {
	w.Header().Set("ETag", httpx.ETag(t.Version))
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteRawJSON(w, status, append(t.AppendJSON(make([]byte, 0, 512)), '\n'))
}

// POST /tasks
func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	p, err := task.ParsePatch(body)
	if err != nil {
		return err
	}
	id := auth.Caller(r)
	t, err := task.Draft(p, id.Subject)
	if err != nil {
		return err
	}
	if err := a.decide(r, func(acc project.Access) error { return task.CheckCreate(acc, t) }); err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	t, err = a.store.Create(r.Context(), id.Subject, t)
	if err != nil {
		return err
	}
	// Replaces a cached "not found" for this id, if a reader guessed it.
	cw.Stored(r.Context(), t)
	w.Header().Set("Location", "/tasks/"+t.ID.String())
	writeTask(w, http.StatusCreated, t)
	return nil
}

// GET /tasks/{id}
func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	inm, err := httpx.Precondition(r, "If-None-Match")
	if err != nil {
		return err
	}
	e, err := a.cache.Get(r.Context(), tid)
	if err != nil {
		return err
	}
	// Checked on every request, hit or miss: the cache holds tasks, not
	// decisions. The token alone decides most reads (a global role, a
	// group role, the personal project, the assignee); only when it does
	// not are the API-managed roles looked up.
	id := auth.Caller(r)
	if !task.CanSeeIn(project.Partial(id), e.Project, e.AssigneeID) {
		err := a.decide(r, func(acc project.Access) error {
			if !task.CanSeeIn(acc, e.Project, e.AssigneeID) {
				return task.ErrNotFound
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	w.Header().Set("ETag", httpx.ETag(e.Version))
	if inm.Matches(httpx.ETag(e.Version), true) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	// The entry's JSON as the cache holds it: a hit is not decoded.
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteRawJSON(w, http.StatusOK, e.JSON)
	return nil
}

// PATCH /tasks/{id}: an RFC 7396 merge patch, If-Match honoured.
func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadBody(w, r, "application/merge-patch+json", "application/json")
	if err != nil {
		return err
	}
	p, err := task.ParsePatch(body)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	store, err := a.moveStore(r)
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	var (
		t       task.Task
		parents []task.Task // whose subtask counts moved
	)
	// Access is resolved before the row is locked, so the lock is not held
	// over it; a refusal writes nothing, so trying again is safe.
	err = a.decide(r, func(acc project.Access) error {
		var err error
		parents = parents[:0]
		t, err = store.Update(r.Context(), acc.ID.Subject, tid, func(cur task.Task) (task.Task, error) {
			if !task.CanSee(acc, cur) {
				return cur, task.ErrNotFound
			}
			if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
				return cur, task.ErrVersionMismatch
			}
			next, bad := p.Apply(cur)
			if len(bad) > 0 {
				return cur, errs.Validation(bad...)
			}
			return next, task.CheckChange(acc, cur, next)
		}, &parents)
		return err
	})
	if err != nil {
		return err
	}
	// Before the reply: a GET after this PATCH must find the new version.
	cw.Stored(r.Context(), t)
	cw.StoredMany(r.Context(), parents)
	if len(t.DroppedFields) > 0 {
		// The body is the task; what a move dropped is said beside it.
		w.Header().Set(DroppedFieldsHeader, strings.Join(t.DroppedFields, ", "))
	}
	writeTask(w, http.StatusOK, t)
	return nil
}

// DroppedFieldsHeader names, on the answer to a PATCH that moved a task
// to another project, the custom fields whose values the move dropped
// (the target project does not define them), comma-separated.
const DroppedFieldsHeader = "Dropped-Fields"

// moveStore reads PATCH's one query parameter, drop_fields: true (the
// default) lets a move drop the values of fields the target project does
// not define; false refuses such a move with a 422 naming them.
func (a *API) moveStore(r *http.Request) (*task.Store, error) {
	v, err := httpx.Query(r)
	if err != nil {
		return nil, err
	}
	for k := range v {
		if k != "drop_fields" {
			return nil, httpx.BadRequest(fmt.Sprintf("unknown query parameter %q", k))
		}
	}
	switch v.Get("drop_fields") {
	case "", "true":
		return a.store, nil
	case "false":
		return a.store.RefusingDrops(), nil
	}
	return nil, httpx.BadRequest(`query parameter "drop_fields" must be true or false`)
}

// DELETE /tasks/{id}, If-Match honoured: to the trash, from which
// POST /tasks/{id}/restore brings it back (see trash.go).
func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	var (
		parents []task.Task
		trashed task.Trashed
	)
	err = a.decide(r, func(acc project.Access) error {
		parents = parents[:0]
		var err error
		trashed, err = a.store.Trash(r.Context(), acc.ID.Subject, tid, func(cur task.Task) error {
			if err := task.CheckDelete(acc, cur); err != nil {
				return err
			}
			if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
				return task.ErrVersionMismatch
			}
			return nil
		}, &parents)
		return err
	})
	if err != nil {
		return err
	}
	cw.Trashed(r.Context(), tid, trashed.Version)
	cw.StoredMany(r.Context(), parents)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /tasks: {"items": [tasks], "next_cursor": string or null}.
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	q, err := listQuery(r)
	if err != nil {
		return err
	}
	acc, err := a.roles.Access(r.Context(), auth.Caller(r))
	if err != nil {
		return err
	}
	q.Only = task.ScopeOf(acc)
	if q.Only != nil && q.Project != "" && !slices.Contains(q.Only.Projects, q.Project) && acc.Cached() {
		// A project the cached roles do not show: it may be one the
		// caller was just given.
		if acc, err = a.roles.Fresh(r.Context(), acc.ID); err != nil {
			return err
		}
		q.Only = task.ScopeOf(acc)
	}
	if len(q.FieldQueries) > 0 {
		// Names resolve against the project's live definitions. Of a
		// project the caller does not see whole (at most its tasks
		// assigned to the caller), a filter that does not resolve lists
		// nothing rather than a 422, which would tell its field names.
		set, err := a.store.FieldSet(r.Context(), q.Project)
		if err != nil {
			return err
		}
		q.Definitions = set
		if q.Fields, err = task.ResolveFieldFilters(set, q.FieldQueries); err != nil {
			if q.Only != nil && !slices.Contains(q.Only.Projects, q.Project) {
				WritePage(w, &task.Page{Items: []task.Task{}})
				return nil
			}
			return err
		}
	}
	page, err := a.store.List(r.Context(), q)
	if err != nil {
		return err
	}
	WritePage(w, &page)
	return nil
}

// decide runs fn with the caller's access and, when an access read from
// the role cache is refused (404, 403, or a project it may not use), once
// more with its roles read now: a grant made in another process is then
// in force at once, as a removal is within the cache's TTL.
func (a *API) decide(r *http.Request, fn func(project.Access) error) error {
	return a.roles.Decide(r.Context(), auth.Caller(r), fn, task.ErrNoProject)
}

// WritePage writes page as the list route's 200 reply and releases it.
// The body is encoded by hand (Page.AppendJSON: a page is up to 200 tasks,
// and this route's CPU was mostly encoding/json) into a recycled buffer.
// The benchmark's list ceiling answers with it too, so the two send the
// same bytes the same way.
func WritePage(w http.ResponseWriter, page *task.Page) {
	bp := listBodies.Get().(*[]byte)
	b := slices.Grow((*bp)[:0], 64+400*len(page.Items))
	b = append(page.AppendJSON(b), '\n')
	page.Release()
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteRawJSON(w, http.StatusOK, b)
	// The body has been written out (copied or sent): its buffer can serve
	// the next page, unless an outsized page grew it.
	if cap(b) <= maxPooledBody {
		*bp = b
		listBodies.Put(bp)
	}
}

// listBodies recycles list bodies. A page of 50 is about 20 kB, half of
// what a list allocated: under load the route's GC ran some 15 times a
// second, each mark taking a CPU for a few milliseconds, which showed in
// the list's p99.
var listBodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody keeps a page of MaxLimit tasks with long texts from being
// held for every later small page.
const maxPooledBody = 256 << 10
