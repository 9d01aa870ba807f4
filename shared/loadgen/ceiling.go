package loadgen

import (
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/julienschmidt/httprouter"
	"github.com/redis/go-redis/v9"

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
func PgxListHandler(store *task.Store) http.Handler {
	rt := httprouter.New()
	rt.GET("/tasks", func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		st := task.Status(r.URL.Query().Get("status"))
		if !st.Valid() {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		q := task.ListQuery{Statuses: []task.Status{st}, Limit: 50, Project: r.URL.Query().Get("project")}
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
