package taskapi

import (
	"net/http"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// ActivityRoute is GET /tasks/{id}/activity, the list-task-activity
// function: the task's history, newest first, to whoever sees the task.
func ActivityRoute(g *auth.Gate, c *cache.Cache, roles *project.Resolver, hist *activity.Store) (httpx.Route, error) {
	if g == nil || c == nil || roles == nil || hist == nil {
		return httpx.Route{}, missing("list-task-activity")
	}
	a := &API{cache: c, roles: roles, hist: hist}
	return g.Route("list-task-activity", http.MethodGet, "/tasks/:id/activity", a.activity), nil
}

// seeTask answers ErrNotFound unless the caller may see task id, deciding
// from the task as the cache holds it (its project and assignee).
func (a *API) seeTask(r *http.Request, id uuid.UUID) error {
	e, err := a.cache.Get(r.Context(), id)
	if err != nil {
		return err
	}
	caller := auth.Caller(r)
	if task.CanSeeIn(project.Partial(caller), e.Project, e.AssigneeID) {
		return nil
	}
	return a.decide(r, func(acc project.Access) error {
		if !task.CanSeeIn(acc, e.Project, e.AssigneeID) {
			return task.ErrNotFound
		}
		return nil
	})
}

// GET /tasks/{id}/activity: {"items": [entries], "next_cursor": ...}.
func (a *API) activity(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	limit, after, err := httpx.IDPage(r, DefaultLimit, MaxLimit)
	if err != nil {
		return err
	}
	if err := a.seeTask(r, tid); err != nil {
		return err
	}
	items, more, err := a.hist.List(r.Context(), tid, after, limit)
	if err != nil {
		return err
	}
	httpx.WriteIDPage(w, items, more, func(x activity.Entry) uuid.UUID { return x.ID })
	return nil
}
