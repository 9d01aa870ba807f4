package loadgen

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/julienschmidt/httprouter"
	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
)

// The ceilings answer GET /tasks/:id with the bytes a function would, doing
// only the one thing the function cannot avoid: nothing, one go-redis GET,
// or one pgx point select; and GET /tasks?status=S with one store List.
// No token check, policy, logging, metrics or problem details: what is
// left between a function and its ceiling is exactly what those cost.

// header sets the headers a task response carries.
func header(w http.ResponseWriter, h http.Header) {
	for k, vs := range h {
		w.Header()[k] = vs
	}
}

// StaticHandler answers with body and h, as a cached GET would if it cost
// nothing to find the task.
func StaticHandler(body []byte, h http.Header) http.Handler {
	rt := httprouter.New()
	rt.GET("/tasks/:id", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		header(w, h)
		_, _ = w.Write(body)
	})
	return rt
}

// RedisHandler answers with the value stored at key(id), read with one
// go-redis GET per request.
func RedisHandler(rdb *redis.Client, key func(id string) string, h http.Header) http.Handler {
	rt := httprouter.New()
	rt.GET("/tasks/:id", func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		b, err := rdb.Get(r.Context(), key(p.ByName("id"))).Bytes()
		switch {
		case errors.Is(err, redis.Nil):
			http.NotFound(w, r)
			return
		case err != nil:
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		header(w, h)
		_, _ = w.Write(b)
	})
	return rt
}

// pointSelect is the store's read of one task.
const pointSelect = "SELECT " + task.Columns + " FROM tasks WHERE id = $1 AND deleted_at IS NULL"

// PgxHandler answers with the task read by one pgx point select per
// request, encoded as the function encodes it.
func PgxHandler(pool *pgxpool.Pool, h http.Header) http.Handler {
	rt := httprouter.New()
	rt.GET("/tasks/:id", func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		id, err := uuid.Parse(p.ByName("id"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		rows, _ := pool.Query(r.Context(), pointSelect, id)
		t, err := pgx.CollectOneRow(rows, task.ScanRows())
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			http.NotFound(w, r)
			return
		case err != nil:
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		header(w, h)
		_, _ = w.Write(append(t.AppendJSON(make([]byte, 0, 512)), '\n'))
	})
	return rt
}

// PgxListHandler answers GET /tasks?status=S with the first page of 50
// tasks of status S (of project=K, and filtered by field.<name>=v, if
// given), read by the store's List and written by the list
// route's own taskapi.WritePage: what a list costs before the function's
// own layers (token, query parsing, policy, logging, metrics).
//
// With as=member it lists as member would, the scope its roles give (its
// projects' branches and the tasks assigned to it): the member's list
// route without the route.
func PgxListHandler(store *task.Store, member *task.Scope) http.Handler {
	rt := httprouter.New()
	rt.GET("/tasks", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		st := task.Status(r.URL.Query().Get("status"))
		if !st.Valid() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		q := task.ListQuery{Statuses: []task.Status{st}, Limit: 50, Project: r.URL.Query().Get("project")}
		if r.URL.Query().Get("as") == "member" {
			q.Only = member
		}
		// A custom field filter (make bench's "list, custom field"),
		// resolved against the project's definitions as the route does.
		var fq []task.FieldQuery
		for k, v := range r.URL.Query() {
			if name, ok := strings.CutPrefix(k, "field."); ok {
				fq = append(fq, task.FieldQuery{Name: name, Op: task.FieldEq, Value: v[0]})
			}
		}
		if len(fq) > 0 {
			set, err := store.FieldSet(r.Context(), q.Project)
			q.Definitions = set
			if err == nil {
				q.Fields, err = task.ResolveFieldFilters(set, fq)
			}
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		page, err := store.List(r.Context(), q)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		taskapi.WritePage(w, &page)
	})
	return rt
}

// The write ceilings answer POST /tasks and PATCH /tasks/{id} with one pgx
// statement each, and nothing a create or an update also does in its
// transaction (history line, outbox events, personal project check,
// custom fields) nor after it (cache, publish).

// newTask is what the insert ceilings read of a create's body: the fields
// the benchmark sends.
type newTask struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Status      string   `json:"status"`
	Priority    string   `json:"priority"`
	Labels      []string `json:"labels"`
}

// insertTask is the store's insert of a task, reduced to the columns the
// benchmark's creates set; a NULL project files it, as the store's does,
// in the owner's personal project (the tasks_personal_project trigger).
const insertTask = `
INSERT INTO tasks (id, title, description, status, priority, owner_id, labels)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING ` + task.Columns

// PgxInsertHandler answers POST /tasks with the task of the body, owned
// by owner, inserted by one pgx INSERT … RETURNING, encoded as the create
// route encodes it, with 201: what a create costs before the function's
// own layers and its transaction's other writes.
func PgxInsertHandler(pool *pgxpool.Pool, owner string) http.Handler {
	return insertHandler(pool, func(*http.Request) string { return owner })
}

// VerifyInsertHandler is PgxInsertHandler behind the bearer token check of
// every function (v.Require, for the task API's roles), the task owned by
// the token's subject: what a create costs with the one check no function
// skips, and none of the rest (rate limit, policy, logging, metrics).
func VerifyInsertHandler(v *auth.Verifier, pool *pgxpool.Pool) http.Handler {
	return v.Require(insertHandler(pool, func(r *http.Request) string { return auth.Caller(r).Subject }), task.Anyone...)
}

func insertHandler(pool *pgxpool.Pool, owner func(*http.Request) string) http.Handler {
	rt := httprouter.New()
	rt.POST("/tasks", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		var nt newTask
		if err := json.NewDecoder(r.Body).Decode(&nt); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		// A UUIDv7, as the store makes: inserts stay at the index's end.
		id, err := uuid.NewV7()
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if nt.Labels == nil {
			nt.Labels = []string{} // NOT NULL
		}
		rows, _ := pool.Query(r.Context(), insertTask, id, nt.Title, nt.Description, nt.Status, nt.Priority, owner(r), nt.Labels)
		t, err := pgx.CollectOneRow(rows, task.ScanRows())
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Location", "/tasks/"+t.ID.String())
		writeTask(w, http.StatusCreated, t)
	})
	return rt
}

// updateStatus is an update's write reduced to the status: the version
// bumped as the store bumps it, the caller's If-Match checked in the same
// statement instead of under a row lock read first.
const updateStatus = `
UPDATE tasks
SET status = $2,
    version = version + 1,
    updated_at = now()
WHERE id = $1
  AND version = $3
  AND deleted_at IS NULL
RETURNING ` + task.Columns

// PgxUpdateHandler answers PATCH /tasks/{id} {"status": S} with If-Match
// "N" by one pgx UPDATE … RETURNING of the task at version N, encoded as
// the update route encodes it, with 200 and its new ETag; 412 when no row
// is at that version (or there is no such task: one statement cannot tell
// them apart, and the benchmark sends neither).
func PgxUpdateHandler(pool *pgxpool.Pool) http.Handler {
	rt := httprouter.New()
	rt.PATCH("/tasks/:id", func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		id, err := uuid.Parse(p.ByName("id"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		version, err := strconv.ParseInt(strings.Trim(r.Header.Get("If-Match"), `"`), 10, 64)
		if err != nil {
			w.WriteHeader(http.StatusPreconditionRequired)
			return
		}
		var change struct {
			Status string `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&change); err != nil || change.Status == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rows, _ := pool.Query(r.Context(), updateStatus, id, change.Status, version)
		t, err := pgx.CollectOneRow(rows, task.ScanRows())
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			w.WriteHeader(http.StatusPreconditionFailed)
			return
		case err != nil:
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		writeTask(w, http.StatusOK, t)
	})
	return rt
}

// writeTask writes t as the task routes do: ETag, Cache-Control and the
// task's JSON.
func writeTask(w http.ResponseWriter, status int, t task.Task) {
	w.Header().Set("ETag", httpx.ETag(t.Version))
	w.Header().Set("Cache-Control", "private, no-cache")
	httpx.WriteRawJSON(w, status, append(t.AppendJSON(make([]byte, 0, 512)), '\n'))
}
