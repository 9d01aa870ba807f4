package taskapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// BulkRoute is PATCH /tasks, the update-tasks function: one merge patch
// applied to up to task.MaxBulk tasks, all or nothing.
func BulkRoute(g *auth.Gate, store *task.Store, c *cache.Cache, roles *project.Resolver) (httpx.Route, error) {
	if g == nil || store == nil || c == nil || roles == nil {
		return httpx.Route{}, missing("update-tasks")
	}
	a := &API{store: store, cache: c, roles: roles}
	return g.Route("update-tasks", http.MethodPatch, "/tasks", a.bulkUpdate), nil
}

// bulkRequest is a bulk change as read: the tasks, the patch, and the
// version each must still be at, where the client says.
type bulkRequest struct {
	ids      []uuid.UUID
	patch    task.Patch
	versions map[uuid.UUID]int64
}

// parseBulk reads {"ids": [...], "patch": {...}, "versions": {id: n}}:
// malformed JSON or an unknown member is a 400, invalid values a 422
// naming each ("ids[3]", "patch.title", "versions.<id>").
func parseBulk(body []byte) (bulkRequest, error) {
	var raw struct {
		IDs      []string         `json:"ids"`
		Patch    json.RawMessage  `json:"patch"`
		Versions map[string]int64 `json:"versions"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil || dec.More() {
		return bulkRequest{}, errs.Syntax(`the body must be one JSON object {"ids": [task ids], "patch": {merge patch}, "versions": {id: version}}`)
	}
	var req bulkRequest
	var bad errs.Fields
	switch {
	case len(raw.IDs) == 0:
		bad.Add("ids", "is required: 1 to 100 task ids")
	case len(raw.IDs) > task.MaxBulk:
		bad.Add("ids", fmt.Sprintf("must hold at most %d task ids", task.MaxBulk))
	}
	seen := map[uuid.UUID]bool{}
	for i, s := range raw.IDs {
		if len(raw.IDs) > task.MaxBulk {
			break
		}
		id, err := uuid.Parse(s)
		switch {
		case err != nil:
			bad.Add(fmt.Sprintf("ids[%d]", i), "is not a task id")
		case seen[id]:
			bad.Add(fmt.Sprintf("ids[%d]", i), "is a duplicate")
		default:
			seen[id] = true
			req.ids = append(req.ids, id)
		}
	}
	if len(raw.Patch) == 0 || string(raw.Patch) == "null" {
		bad.Add("patch", "is required: a JSON merge patch of the tasks")
	} else {
		p, err := task.ParsePatch(raw.Patch)
		var ve *errs.ValidationError
		switch {
		case errors.As(err, &ve):
			for _, f := range ve.Fields {
				bad.Add("patch."+f.Field, f.Detail)
			}
		case err != nil:
			return bulkRequest{}, errs.Syntax("patch: " + err.Error())
		}
		req.patch = p
	}
	if len(raw.Versions) > 0 {
		req.versions = make(map[uuid.UUID]int64, len(raw.Versions))
	}
	for k, v := range raw.Versions {
		id, err := uuid.Parse(k)
		switch {
		case err != nil || !seen[id]:
			bad.Add("versions."+k, "names no task of ids")
		case v < 1:
			bad.Add("versions."+k, "must be a version, 1 or more")
		default:
			req.versions[id] = v
		}
	}
	return req, bad.Err()
}

// PATCH /tasks: {"items": [tasks]} in the order of ids.
func (a *API) bulkUpdate(w http.ResponseWriter, r *http.Request) error {
	body, err := httpx.ReadBody(w, r, "application/json", "application/merge-patch+json")
	if err != nil {
		return err
	}
	req, err := parseBulk(body)
	if err != nil {
		return err
	}
	change := func(acc project.Access) func(cur task.Task) (task.Task, error) {
		return func(cur task.Task) (task.Task, error) {
			if !task.CanSee(acc, cur) {
				return cur, task.ErrNotFound
			}
			if v, ok := req.versions[cur.ID]; ok && v != cur.Version {
				return cur, task.ErrVersionMismatch
			}
			next, bad := req.patch.Apply(cur)
			if len(bad) > 0 {
				return cur, errs.Validation(bad...)
			}
			return next, task.CheckChange(acc, cur, next)
		}
	}
	acc, err := a.roles.Access(r.Context(), auth.Caller(r))
	if err != nil {
		return err
	}
	cw := a.cache.BeginWrite(r.Context())
	var parents []task.Task // outside ids, whose subtask counts moved
	tasks, err := a.store.UpdateMany(r.Context(), acc.ID.Subject, req.ids, change(acc), &parents)
	var be *task.BulkError
	if errors.As(err, &be) && acc.Cached() && refusedByRoles(be) {
		// As decide does for one task: a grant made elsewhere counts at once.
		if acc, err = a.roles.Fresh(r.Context(), acc.ID); err != nil {
			return err
		}
		tasks, err = a.store.UpdateMany(r.Context(), acc.ID.Subject, req.ids, change(acc), &parents)
	}
	if errors.As(err, &be) {
		return bulkProblem(r, req.ids, be)
	}
	if err != nil {
		return err
	}
	cw.StoredMany(r.Context(), append(tasks, parents...))
	page := task.Page{Items: tasks}
	WritePage(w, &page)
	return nil
}

// refusedByRoles: a refusal fresher roles might lift.
func refusedByRoles(be *task.BulkError) bool {
	for _, f := range be.Failures {
		if k := errs.KindOf(f.Err); k == errs.NotFound || k == errs.Forbidden || errors.Is(f.Err, task.ErrNoProject) {
			return true
		}
	}
	return false
}

// bulkProblems ranks the statuses of a refused bulk change: the answer is
// that of its gravest refusal, a task missing or hidden first.
var bulkRank = map[int]int{http.StatusNotFound: 4, http.StatusForbidden: 3, http.StatusPreconditionFailed: 2, http.StatusUnprocessableEntity: 1}

// bulkProblem is the answer to a refused bulk change: the status of its
// gravest refusal, and in errors one entry per refused task ("ids[i]",
// its id and why), as each would have answered alone.
func bulkProblem(r *http.Request, ids []uuid.UUID, be *task.BulkError) *httpx.Problem {
	status := http.StatusUnprocessableEntity
	var fields []errs.FieldError
	for _, f := range be.Failures {
		p := httpx.ProblemOf(r.Context(), f.Err)
		if bulkRank[p.Status] > bulkRank[status] {
			status = p.Status
		}
		why := strings.ToLower(p.Title)
		switch {
		case errors.Is(f.Err, task.ErrVersionMismatch):
			why += ": the task has changed since the version named in versions; fetch it again"
		case p.Detail != "" && p.Status != http.StatusUnprocessableEntity:
			why += ": " + p.Detail
		}
		for _, fe := range p.Errors {
			why += "; " + fe.Field + " " + fe.Detail
		}
		fields = append(fields, errs.FieldError{Field: fmt.Sprintf("ids[%d]", f.Index), Detail: f.ID.String() + ": " + why})
	}
	p := httpx.NewProblem(status, "bulk-refused", "Bulk change refused",
		fmt.Sprintf("%d of the %d tasks cannot be changed so; nothing was changed", len(be.Failures), len(ids)))
	if len(fields) > errs.MaxFieldErrors {
		p.ErrorsOmitted = len(fields) - errs.MaxFieldErrors
		fields = fields[:errs.MaxFieldErrors]
	}
	p.Errors = fields
	return p
}
