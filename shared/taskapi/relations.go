package taskapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/relation"
	"github.com/taskfn/taskfn/shared/task"
)

// Relations is what the relation routes run on beside the task routes'.
type Relations struct {
	DB    *pg.DB
	Store *task.Store
	Cache *cache.Cache
	Roles *project.Resolver
}

func (d Relations) api(route string) (*API, error) {
	if d.DB == nil || d.Store == nil || d.Cache == nil || d.Roles == nil {
		return nil, missing(route)
	}
	rels, err := relation.NewStore(d.DB, d.Store)
	if err != nil {
		return nil, err
	}
	return &API{store: d.Store, cache: d.Cache, roles: d.Roles, rels: rels}, nil
}

// CreateRelationRoute is POST /tasks/{id}/relations, the create-relation function.
func CreateRelationRoute(g *auth.Gate, d Relations) (httpx.Route, error) {
	a, err := d.api("create-relation")
	if err != nil || g == nil {
		return httpx.Route{}, errors.Join(err, missing("create-relation"))
	}
	return g.Route("create-relation", http.MethodPost, "/tasks/:id/relations", a.createRelation), nil
}

// ListRelationsRoute is GET /tasks/{id}/relations, the list-relations function.
func ListRelationsRoute(g *auth.Gate, d Relations) (httpx.Route, error) {
	a, err := d.api("list-relations")
	if err != nil || g == nil {
		return httpx.Route{}, errors.Join(err, missing("list-relations"))
	}
	return g.Route("list-relations", http.MethodGet, "/tasks/:id/relations", a.listRelations), nil
}

// DeleteRelationRoute is DELETE /tasks/{id}/relations/{kind}/{other}, the
// delete-relation function.
func DeleteRelationRoute(g *auth.Gate, d Relations) (httpx.Route, error) {
	a, err := d.api("delete-relation")
	if err != nil || g == nil {
		return httpx.Route{}, errors.Join(err, missing("delete-relation"))
	}
	return g.Route("delete-relation", http.MethodDelete, "/tasks/:id/relations/:kind/:other", a.deleteRelation), nil
}

// relateTo decides whether the caller may change task id's relations,
// from the task as the cache holds it.
func (a *API) relateTo(r *http.Request, id uuid.UUID) (project.Access, error) {
	e, err := a.cache.Get(r.Context(), id)
	if err != nil {
		return project.Access{}, err
	}
	var out project.Access
	err = a.decide(r, func(acc project.Access) error {
		out = acc
		return task.CheckRelate(acc, e.Project, e.AssigneeID)
	})
	return out, err
}

// errNoOther: the other task does not exist or the caller may not see it,
// which must read the same.
var errNoOther = errs.Validation(errs.FieldError{Field: "task_id", Detail: "names no task you may see"})

// POST /tasks/{id}/relations {kind, task_id}
func (a *API) createRelation(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	body, err := httpx.ReadBody(w, r, "application/json")
	if err != nil {
		return err
	}
	var in struct {
		Kind   string `json:"kind"`
		TaskID string `json:"task_id"`
	}
	if err := strictJSON(body, &in); err != nil {
		return err
	}
	var bad errs.Fields
	kind := relation.Kind(in.Kind)
	if !kind.Valid() {
		bad.Add("kind", "must be one of subtask_of, blocks, relates_to, duplicates")
	}
	other, perr := uuid.Parse(in.TaskID)
	if perr != nil {
		bad.Add("task_id", "must be a task id")
	}
	if err := bad.Err(); err != nil {
		return err
	}
	acc, err := a.relateTo(r, tid)
	if err != nil {
		return err
	}
	oe, err := a.cache.Get(r.Context(), other)
	if errors.Is(err, task.ErrNotFound) || (err == nil && !task.CanSeeIn(acc, oe.Project, oe.AssigneeID)) {
		return errNoOther
	}
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	var parents []task.Task
	rel, err := a.rels.Add(r.Context(), acc.ID.Subject, tid, kind, other, &parents)
	if err != nil {
		if errs.KindOf(err) == errs.NotFound {
			return errNoOther // deleted meanwhile
		}
		return err
	}
	// Before the reply: the parent's next GET shows its new count.
	cw.StoredMany(r.Context(), parents)
	var o task.Task
	if err := json.Unmarshal(oe.JSON, &o); err != nil {
		return fmt.Errorf("taskapi: cached task %s: %w", other, err)
	}
	w.Header().Set("Location", fmt.Sprintf("/tasks/%s/relations/%s/%s", tid, rel.Kind, rel.OtherID))
	httpx.WriteJSON(w, http.StatusCreated, relationView{Kind: rel.Kind, Direction: "outgoing", TaskID: &rel.OtherID, Title: &o.Title, Status: &o.Status,
		CreatedBy: rel.CreatedBy, CreatedAt: rel.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00")})
	return nil
}

// relationView is a relation as seen from one of its tasks: the other
// task's id, title and status when the caller may see it, else hidden.
type relationView struct {
	Kind      relation.Kind `json:"kind"`
	Direction string        `json:"direction"` // outgoing: this task <kind> the other
	Hidden    bool          `json:"hidden"`
	TaskID    *uuid.UUID    `json:"task_id"`
	Title     *string       `json:"title"`
	Status    *task.Status  `json:"status"`
	CreatedBy string        `json:"created_by"`
	CreatedAt string        `json:"created_at"`
}

// GET /tasks/{id}/relations: {"items": [relations]}, both directions.
func (a *API) listRelations(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	if err := a.seeTask(r, tid); err != nil {
		return err
	}
	rels, err := a.rels.Of(r.Context(), tid)
	if err != nil {
		return err
	}
	ids := make([]uuid.UUID, 0, len(rels))
	for _, rel := range rels {
		ids = append(ids, otherOf(rel, tid))
	}
	others, err := a.store.GetMany(r.Context(), ids)
	if err != nil {
		return err
	}
	acc, err := a.roles.Access(r.Context(), auth.Caller(r))
	if err != nil {
		return err
	}
	items := make([]relationView, 0, len(rels))
	for _, rel := range rels {
		v := relationView{Kind: rel.Kind, Direction: "outgoing", Hidden: true, CreatedBy: rel.CreatedBy,
			CreatedAt: rel.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999Z07:00")}
		if rel.TaskID != tid {
			v.Direction = "incoming"
		}
		if o, ok := others[otherOf(rel, tid)]; ok && task.CanSee(acc, o) {
			v.Hidden, v.TaskID, v.Title, v.Status = false, &o.ID, &o.Title, &o.Status
		}
		items = append(items, v)
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteJSON(w, http.StatusOK, struct {
		Items []relationView `json:"items"`
	}{items})
	return nil
}

func otherOf(rel relation.Relation, tid uuid.UUID) uuid.UUID {
	if rel.TaskID == tid {
		return rel.OtherID
	}
	return rel.TaskID
}

// DELETE /tasks/{id}/relations/{kind}/{other}: the relation added to this task.
func (a *API) deleteRelation(w http.ResponseWriter, r *http.Request) error {
	tid, err := taskID(r)
	if err != nil {
		return err
	}
	p := httprouter.ParamsFromContext(r.Context())
	kind := relation.Kind(p.ByName("kind"))
	other, err := uuid.Parse(p.ByName("other"))
	if err != nil || !kind.Valid() {
		return relation.ErrNotFound
	}
	acc, err := a.relateTo(r, tid)
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	var parents []task.Task
	if err := a.rels.Remove(r.Context(), acc.ID.Subject, tid, kind, other, &parents); err != nil {
		return err
	}
	cw.StoredMany(r.Context(), parents)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// strictJSON decodes one JSON object into v, refusing unknown members.
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return errs.Syntax(`the body must be one JSON object {"kind": ..., "task_id": ...}`)
	}
	return nil
}
