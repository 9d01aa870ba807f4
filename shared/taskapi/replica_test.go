package taskapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// replicaWorld is the ten routes wired as a function wires them (Open),
// with DATABASE_READ_URL naming a separate copy of the schema instead of a
// streaming replica: nothing written to the primary reaches it, so each
// response shows which database served it, as a replica that lags forever
// would.
type replicaWorld struct {
	t                *testing.T
	primary, replica *pgx.Conn
	srv              *httptest.Server
	token            string
}

const replicaAdmin = "replica-admin"

// newReplicaWorld wires the routes with cache configured by withCache.
func newReplicaWorld(t *testing.T, withCache func(*Config)) *replicaWorld {
	t.Helper()
	ctx := t.Context()
	iss := authtest.NewIssuer(t)
	cfg := testConfig(t, iss)
	replica := pgtest.NewConfig(t)
	cfg.DB.ReadURL = replica.URL
	withCache(&cfg)
	_, srv := serveTasks(t, cfg)
	w := &replicaWorld{t: t, srv: srv, token: iss.Token(t, replicaAdmin, auth.RoleAdmin)}
	for _, c := range []struct {
		dst **pgx.Conn
		url string
	}{{&w.primary, cfg.DB.URL}, {&w.replica, replica.URL}} {
		// Directly, not through PgBouncer: this connection's prepared
		// statements would not survive transaction pooling.
		cc, err := pgx.ParseConfig(c.url)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, pgtest.DirectURL(cc.Database))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		*c.dst = conn
	}
	return w
}

// seed stores the same task in both databases, titled after the database.
func (w *replicaWorld) seed() uuid.UUID {
	w.t.Helper()
	id := uuid.Must(uuid.NewV7())
	const q = `
INSERT INTO tasks (id, title, status, priority, owner_id)
VALUES ($1, $2, 'todo', 'medium', $3)`
	for title, conn := range map[string]*pgx.Conn{"on primary": w.primary, "on replica": w.replica} {
		if _, err := conn.Exec(w.t.Context(), q, id, title, replicaAdmin); err != nil {
			w.t.Fatal(err)
		}
	}
	return id
}

// call sends a request and decodes a JSON body into out, if given.
func (w *replicaWorld) call(method, path, body string, want int, out any) {
	w.t.Helper()
	resp, b := httpxtest.Call(w.t, w.srv.Client(), method, w.srv.URL+path, w.token, body)
	if resp.StatusCode != want {
		w.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

type titled struct {
	ID      uuid.UUID `json:"id"`
	Title   string    `json:"title"`
	Version int64     `json:"version"`
}

func (w *replicaWorld) get(id uuid.UUID, want int) titled {
	w.t.Helper()
	var got titled
	if want != http.StatusOK {
		w.call("GET", "/tasks/"+id.String(), "", want, nil)
		return got
	}
	w.call("GET", "/tasks/"+id.String(), "", want, &got)
	return got
}

func (w *replicaWorld) list() []titled {
	w.t.Helper()
	var page struct{ Items []titled }
	w.call("GET", "/tasks?status=todo&sort=-created_at&limit=50", "", http.StatusOK, &page)
	return page.Items
}

// List and cache misses read the replica; writes, and the reads inside
// them, the primary; and a caller's own write is visible to its next GET
// by id even though the replica never sees it, because the writer
// refreshes the cache entry. Without the cache that guarantee is gone
// (GET reads the replica); with Redis down GET reads the primary.
func TestReplicaRoutingOverHTTP(t *testing.T) {
	t.Parallel()

	t.Run("with the cache", func(t *testing.T) {
		t.Parallel()
		w := newReplicaWorld(t, func(*Config) {})
		id := w.seed()
		if got := w.get(id, http.StatusOK); got.Title != "on replica" {
			t.Errorf("GET (miss) = %q, want the replica's row", got.Title)
		}
		if items := w.list(); len(items) != 1 || items[0].Title != "on replica" {
			t.Errorf("list = %+v, want the replica's row", items)
		}

		var patched titled
		w.call("PATCH", "/tasks/"+id.String(), `{"priority":"high"}`, http.StatusOK, &patched)
		if patched.Title != "on primary" || patched.Version != 2 {
			t.Errorf("PATCH = %+v, want the primary's row at version 2", patched)
		}
		if got := w.get(id, http.StatusOK); got.Title != "on primary" || got.Version != 2 {
			t.Errorf("GET after own PATCH = %+v, want version 2 from the refreshed cache", got)
		}
		if items := w.list(); len(items) != 1 || items[0].Version != 1 {
			t.Errorf("list after PATCH = %+v, want the lagging replica's version 1", items)
		}

		var created titled
		w.call("POST", "/tasks", `{"title":"new"}`, http.StatusCreated, &created)
		if got := w.get(created.ID, http.StatusOK); got.Title != "new" {
			t.Errorf("GET after own POST = %+v", got)
		}
		w.call("DELETE", "/tasks/"+id.String(), "", http.StatusNoContent, nil)
		w.get(id, http.StatusNotFound)
	})

	t.Run("without the cache", func(t *testing.T) {
		t.Parallel()
		w := newReplicaWorld(t, func(c *Config) { c.Cache.Enabled = false })
		id := w.seed()
		var patched titled
		w.call("PATCH", "/tasks/"+id.String(), `{"priority":"high"}`, http.StatusOK, &patched)
		if patched.Title != "on primary" || patched.Version != 2 {
			t.Errorf("PATCH = %+v, want the primary's row at version 2", patched)
		}
		// The documented trade-off: GET reads the replica, which has
		// not caught up with the caller's own write.
		if got := w.get(id, http.StatusOK); got.Title != "on replica" || got.Version != 1 {
			t.Errorf("GET = %+v, want the lagging replica's version 1", got)
		}
	})

	t.Run("Redis down", func(t *testing.T) {
		t.Parallel()
		w := newReplicaWorld(t, func(c *Config) {
			c.Cache.RedisURL = "redis://127.0.0.1:1/0" // nothing listens on port 1
		})
		id := w.seed()
		if got := w.get(id, http.StatusOK); got.Title != "on primary" {
			t.Errorf("GET = %q, want the primary's row when Redis cannot answer", got.Title)
		}
		if items := w.list(); len(items) != 1 || items[0].Title != "on replica" {
			t.Errorf("list = %+v, want the replica's row", items)
		}
	})
}
