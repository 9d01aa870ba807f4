package taskapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/task"
)

// cacheResults reads taskfn_cache_requests_total by result from the env's
// registry, as /metrics would show it.
func (e *env) cacheResults() map[string]float64 {
	e.t.Helper()
	return metricstest.ByLabel(e.t, e.reg, "taskfn_cache_requests_total", "result")
}

// TestGetThroughCache follows one task through the handlers and counts
// what the cache did at each step.
func TestGetThroughCache(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	store, err := task.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	// Stored behind the API's back, so the first read must miss.
	tk, err := store.Create(context.Background(), "", task.Task{Title: "cached", Status: task.StatusTodo, Priority: task.PriorityMedium, OwnerID: carol})
	if err != nil {
		t.Fatal(err)
	}
	path := "/tasks/" + tk.ID.String()
	want := map[string]float64{"hit": 0, "miss": 0, "negative_hit": 0, "error": 0}
	step := func(name string, r req, status int, etag string, counted map[string]float64) reply {
		t.Helper()
		got := e.do(r)
		if got.status != status {
			t.Fatalf("%s: status %d, want %d: %s", name, got.status, status, got.body)
		}
		if etag != "" && got.header.Get("ETag") != etag {
			t.Errorf("%s: ETag %q, want %q", name, got.header.Get("ETag"), etag)
		}
		for k, v := range counted {
			want[k] += v
		}
		if d := cmp.Diff(want, e.cacheResults()); d != "" {
			t.Errorf("%s: cache results (-want +got):\n%s", name, d)
		}
		return got
	}

	step("first read", req{method: "GET", path: path, as: carol}, 200, `"1"`, map[string]float64{"miss": 1})
	first := step("second read", req{method: "GET", path: path, as: carol}, 200, `"1"`, map[string]float64{"hit": 1})
	if first.task(t).Title != "cached" {
		t.Errorf("title %q", first.task(t).Title)
	}
	// The cache holds the task, not the decision: a stranger is refused
	// on a hit as on a miss.
	step("stranger", req{method: "GET", path: path, as: dave}, 404, "", map[string]float64{"hit": 1})
	step("conditional", req{method: "GET", path: path, as: carol, header: map[string]string{"If-None-Match": `"1"`}}, 304, `"1"`, map[string]float64{"hit": 1})

	patched := step("patch", req{method: "PATCH", path: path, as: carol, body: map[string]any{"title": "renamed"}}, 200, `"2"`, nil)
	got := step("read after patch", req{method: "GET", path: path, as: carol}, 200, `"2"`, map[string]float64{"hit": 1})
	if d := cmp.Diff(patched.task(t), got.task(t)); d != "" {
		t.Errorf("GET after PATCH differs from the PATCH reply (-patch +get):\n%s", d)
	}

	step("delete", req{method: "DELETE", path: path, as: carol}, 204, "", nil)
	step("read after delete", req{method: "GET", path: path, as: carol}, 404, "", map[string]float64{"negative_hit": 1})

	created := e.create(carol, map[string]any{"title": "fresh"})
	step("read after create", req{method: "GET", path: "/tasks/" + created.ID.String(), as: carol}, 200, `"1"`, map[string]float64{"hit": 1})

	unknown := "/tasks/0190f3a0-0000-7000-8000-000000000001"
	step("unknown id", req{method: "GET", path: unknown, as: alice}, 404, "", map[string]float64{"miss": 1})
	step("unknown id again", req{method: "GET", path: unknown, as: alice}, 404, "", map[string]float64{"negative_hit": 1})
}

// TestReadyWithoutRedis: Redis is optional for correctness, so /readyz
// must not depend on it, and reads are served from the database.
func TestReadyWithoutRedis(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, authtest.NewIssuer(t))
	cfg.Cache = cachetest.Config(t, "redis://127.0.0.1:1/0") // nothing listens on port 1
	_, srv := serveTasks(t, cfg)

	resp, err := srv.Client().Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz with Redis down: %d, want 200", resp.StatusCode)
	}
}
