package taskapi

import (
	"fmt"
	"net/http"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// The trash: DELETE /tasks/{id} puts a task there (api.go); these routes
// list it, take a task back out, and purge one for good.

// TrashRoute is GET /trash, the list-trash function.
func TrashRoute(g *auth.Gate, store *task.Store, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || roles == nil {
		return httpx.Route{}, missing("list-trash")
	}
	a := &API{store: store, roles: roles}
	return g.Route("list-trash", http.MethodGet, "/trash", a.listTrash), nil
}

// RestoreRoute is POST /tasks/{id}/restore, the restore-task function.
func RestoreRoute(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("restore-task")
	}
	a := &API{store: store, cache: c, roles: roles}
	return g.Route("restore-task", http.MethodPost, "/tasks/:id/restore", a.restore), nil
}

// PurgeRoute is DELETE /trash/{id}, the purge-task function.
func PurgeRoute(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("purge-task")
	}
	a := &API{store: store, cache: c, roles: roles}
	return g.Route("purge-task", http.MethodDelete, "/trash/:id", a.purge), nil
}

// GET /trash: {"items": [trashed tasks], "next_cursor": ...}, most
// recently trashed first.
func (a *API) listTrash(w http.ResponseWriter, r *http.Request) error {
	v, err := httpx.Query(r)
	if err != nil {
		return err
	}
	for k, vs := range v {
		if (k != "limit" && k != "cursor") || len(vs) > 1 {
			return httpx.BadRequest(fmt.Sprintf("query parameter %q: this route takes limit and cursor, once each", k))
		}
	}
	q := task.TrashQuery{}
	if q.Limit, err = httpx.Limit(v, DefaultLimit, MaxLimit); err != nil {
		return err
	}
	if s, ok := v["cursor"]; ok {
		c, err := task.DecodeCursor(s[0])
		if err != nil || c.Ascending {
			return badParam("cursor", "is not a cursor this route made; use the next_cursor of a previous page")
		}
		q.After = &c
	}
	acc, err := a.roles.Access(r.Context(), auth.Caller(r))
	if err != nil {
		return err
	}
	q.Scope = task.TrashScopeOf(acc)
	items, next, err := a.store.ListTrash(r.Context(), q)
	if err != nil {
		return err
	}
	// Encoded by hand, as the list route's page is: encoding/json would
	// reflect over the page and re-validate each item's JSON.
	b := append(make([]byte, 0, 64+600*len(items)), `{"items":[`...)
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = items[i].AppendJSON(b)
	}
	b = append(b, `],"next_cursor":`...)
	if next == nil {
		b = append(b, "null"...)
	} else {
		b = task.AppendJSONString(b, next.Encode())
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteRawJSON(w, http.StatusOK, append(b, "}\n"...))
	return nil
}

// POST /tasks/{id}/restore: 200 with the task as it was, at a new
// version; If-Match names the version it had in the trash.
func (a *API) restore(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	if r.ContentLength > 0 {
		return httpx.BadRequest("POST /tasks/{id}/restore takes no body")
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	var (
		t       task.Task
		parents []task.Task
	)
	// A refusal of cached roles is tried again with fresh ones, the 409
	// too: the caller may have just been given its role back.
	err = a.roles.Decide(r.Context(), auth.Caller(r), func(acc project.Access) error {
		parents = parents[:0]
		var err error
		t, err = a.store.Restore(r.Context(), acc.ID.Subject, tid, func(cur task.Trashed) error {
			if err := task.CheckRestore(acc, cur); err != nil {
				return err
			}
			if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
				return task.ErrVersionMismatch
			}
			return nil
		}, &parents)
		return err
	}, task.ErrNoProject, task.ErrRestoreRefused)
	if err != nil {
		return err
	}
	// Its version is above the trashed entry's, which it replaces.
	cw.Stored(r.Context(), t)
	cw.StoredMany(r.Context(), parents)
	w.Header().Set("Content-Location", "/tasks/"+t.ID.String())
	writeTask(w, http.StatusOK, t)
	return nil
}

// DELETE /trash/{id}: the task, its comments, history and relations,
// gone for good.
func (a *API) purge(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return task.ErrNotTrashed
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	err = a.decide(r, func(acc project.Access) error {
		return a.store.Purge(r.Context(), acc.ID.Subject, tid, func(cur task.Trashed) error {
			if err := task.CheckPurge(acc, cur); err != nil {
				return err
			}
			if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
				return task.ErrVersionMismatch
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	cw.Deleted(r.Context(), tid)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
