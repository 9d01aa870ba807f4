// Package commentapi is the HTTP comment API: POST and GET
// /tasks/{id}/comments, PATCH and DELETE /comments/{id}, one route per
// function. Who may do what follows the comment's task: read by whoever
// sees it, written by whoever may change it and its assignee.
package commentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/comment"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// Limits of the list route.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// API holds what the comment handlers run on: the comments, the task
// cache (the task's project and assignee decide access), the roles and,
// for the writes, the mentions.
type API struct {
	store    *comment.Store
	cache    *cache.Cache
	roles    *project.Resolver
	mentions *Mentions
}

// Deps is what the routes are built on.
type Deps struct {
	Store    *comment.Store
	Cache    *cache.Cache
	Roles    *project.Resolver
	Mentions *Mentions // create and update only
}

// Constructor is one route's constructor.
type Constructor func(*auth.Gate, Deps) (httpx.Route, error)

func route(name, method, path string, mentions bool, h func(*API) httpx.HandlerFunc) Constructor {
	return func(g *auth.Gate, d Deps) (httpx.Route, error) {
		if g == nil || d.Store == nil || d.Cache == nil || d.Roles == nil || mentions && d.Mentions == nil {
			return httpx.Route{}, fmt.Errorf("commentapi: %s: %w", name, function.ErrMissing)
		}
		a := &API{store: d.Store, cache: d.Cache, roles: d.Roles, mentions: d.Mentions}
		return g.Route(name, method, path, h(a)), nil
	}
}

// The routes, one per function.
var (
	CreateRoute = route("create-comment", http.MethodPost, "/tasks/:id/comments", true, func(a *API) httpx.HandlerFunc { return a.create })
	ListRoute   = route("list-comments", http.MethodGet, "/tasks/:id/comments", false, func(a *API) httpx.HandlerFunc { return a.list })
	UpdateRoute = route("update-comment", http.MethodPatch, "/comments/:id", true, func(a *API) httpx.HandlerFunc { return a.update })
	DeleteRoute = route("delete-comment", http.MethodDelete, "/comments/:id", false, func(a *API) httpx.HandlerFunc { return a.delete })
)

// Routes are all four, as the dev runner and the tests mount them.
func Routes(g *auth.Gate, d Deps) ([]httpx.Route, error) {
	var out []httpx.Route
	for _, r := range []Constructor{CreateRoute, ListRoute, UpdateRoute, DeleteRoute} {
		rt, err := r(g, d)
		if err != nil {
			return nil, err
		}
		out = append(out, rt)
	}
	return out, nil
}

func pathID(r *http.Request, notFound error) (uuid.UUID, error) {
	id, err := uuid.Parse(httprouter.ParamsFromContext(r.Context()).ByName("id"))
	if err != nil {
		return uuid.Nil, notFound
	}
	return id, nil
}

// taskOf is a task as the cache holds it, with the snapshot its comment
// events carry.
type taskOf struct {
	entry cache.Entry
	snap  events.TaskSnapshot
}

func (a *API) task(r *http.Request, id uuid.UUID) (taskOf, error) {
	e, err := a.cache.Get(r.Context(), id)
	if err != nil {
		return taskOf{}, err
	}
	var t task.Task
	if err := json.Unmarshal(e.JSON, &t); err != nil {
		return taskOf{}, fmt.Errorf("commentapi: cached task %s: %w", id, err)
	}
	return taskOf{entry: e, snap: t.Snapshot()}, nil
}

// decide runs check with the caller's access, again on fresh roles when
// cached ones refuse (see project.Resolver.Decide).
func (a *API) decide(r *http.Request, check func(project.Access) error) (project.Access, error) {
	var out project.Access
	err := a.roles.Decide(r.Context(), auth.Caller(r), func(acc project.Access) error {
		out = acc
		return check(acc)
	})
	return out, err
}

func writeComment(w http.ResponseWriter, status int, c comment.Comment) {
	w.Header().Set("ETag", httpx.ETag(c.Version))
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, status, c)
}

// POST /tasks/{id}/comments {body}
func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	tid, err := pathID(r, task.ErrNotFound)
	if err != nil {
		return err
	}
	raw, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	body, err := comment.ParseBody(raw)
	if err != nil {
		return err
	}
	t, err := a.task(r, tid)
	if err != nil {
		return err
	}
	acc, err := a.decide(r, func(acc project.Access) error {
		return task.CheckComment(acc, t.entry.Project, t.entry.AssigneeID)
	})
	if err != nil {
		return err
	}
	mentioned, err := a.mentions.Of(r.Context(), body, acc.ID.Subject, t)
	if err != nil {
		return err
	}
	c, err := a.store.Create(r.Context(), acc.ID.Subject, t.snap, body, mentioned)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/comments/"+c.ID.String())
	writeComment(w, http.StatusCreated, c)
	return nil
}

// GET /tasks/{id}/comments: {"items": [comments], "next_cursor": ...}, oldest first.
func (a *API) list(w http.ResponseWriter, r *http.Request) error {
	tid, err := pathID(r, task.ErrNotFound)
	if err != nil {
		return err
	}
	limit, after, err := httpx.IDPage(r, DefaultLimit, MaxLimit)
	if err != nil {
		return err
	}
	e, err := a.cache.Get(r.Context(), tid)
	if err != nil {
		return err
	}
	if !task.CanSeeIn(project.Partial(auth.Caller(r)), e.Project, e.AssigneeID) {
		if _, err := a.decide(r, func(acc project.Access) error {
			if !task.CanSeeIn(acc, e.Project, e.AssigneeID) {
				return task.ErrNotFound
			}
			return nil
		}); err != nil {
			return err
		}
	}
	items, more, err := a.store.List(r.Context(), tid, after, limit)
	if err != nil {
		return err
	}
	httpx.WriteIDPage(w, items, more, func(x comment.Comment) uuid.UUID { return x.ID })
	return nil
}

// commentAndTask reads the comment of the path and its task, and decides
// check on them; a comment on a task the caller may not see is not found.
func (a *API) commentAndTask(r *http.Request, check func(project.Access, comment.Comment, taskOf) error) (project.Access, comment.Comment, taskOf, error) {
	cid, err := pathID(r, comment.ErrNotFound)
	if err != nil {
		return project.Access{}, comment.Comment{}, taskOf{}, err
	}
	c, err := a.store.Get(r.Context(), cid)
	if err != nil {
		return project.Access{}, comment.Comment{}, taskOf{}, err
	}
	t, err := a.task(r, c.TaskID)
	if err != nil {
		if errors.Is(err, task.ErrNotFound) {
			return project.Access{}, comment.Comment{}, taskOf{}, comment.ErrNotFound
		}
		return project.Access{}, comment.Comment{}, taskOf{}, err
	}
	acc, err := a.decide(r, func(acc project.Access) error {
		if !task.CanSeeIn(acc, t.entry.Project, t.entry.AssigneeID) {
			return comment.ErrNotFound
		}
		return check(acc, c, t)
	})
	return acc, c, t, err
}

// PATCH /comments/{id} {body}: its author only, If-Match honoured.
func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	raw, err := httpx.ReadBody(w, r, "application/merge-patch+json", "application/json")
	if err != nil {
		return err
	}
	body, err := comment.ParseBody(raw)
	if err != nil {
		return err
	}
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	acc, c, t, err := a.commentAndTask(r, func(acc project.Access, c comment.Comment, _ taskOf) error {
		return task.CheckCommentEdit(acc, c.Author)
	})
	if err != nil {
		return err
	}
	mentioned, err := a.mentions.Of(r.Context(), body, acc.ID.Subject, t)
	if err != nil {
		return err
	}
	updated, err := a.store.Update(r.Context(), acc.ID.Subject, c.ID, t.snap, body, mentioned, func(cur comment.Comment) error {
		if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
			return comment.ErrVersionMismatch
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeComment(w, http.StatusOK, updated)
	return nil
}

// DELETE /comments/{id}: its author, a maintainer of the task's project
// or an admin; If-Match honoured.
func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	ifMatch, err := httpx.Precondition(r, "If-Match")
	if err != nil {
		return err
	}
	acc, c, t, err := a.commentAndTask(r, func(acc project.Access, c comment.Comment, t taskOf) error {
		return task.CheckCommentDelete(acc, t.entry.Project, c.Author)
	})
	if err != nil {
		return err
	}
	err = a.store.Delete(r.Context(), acc.ID.Subject, c.ID, t.snap, func(cur comment.Comment) error {
		if ifMatch != nil && !ifMatch.Matches(httpx.ETag(cur.Version), false) {
			return comment.ErrVersionMismatch
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
