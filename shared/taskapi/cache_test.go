package taskapi

import (
	"context"
	"net/http"
	"testing"
	"time"

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

// TestFormerAssigneeLosesAccess: once a reassignment or an unassignment
// has been acknowledged, the former assignee can neither read nor change
// the task, at once and on every pod: the refreshed entry, not the one
// that named them, answers the read (a cache hit, counted), and the policy
// refuses it as it refuses a stranger (404, not 403).
func TestFormerAssigneeLosesAccess(t *testing.T) {
	t.Parallel()
	const next = "zoe-member"
	tests := []struct {
		name     string
		assignee any // the PATCH's assignee_id
	}{
		{"reassigned", next},
		{"unassigned", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iss := authtest.NewIssuer(t)
			cfg := testConfig(t, iss)
			// Nothing fails on purpose: a Redis call timing out on a busy
			// machine would read the database and not count as a hit.
			cfg.Cache.Timeout = 5 * time.Second
			// a takes the writes, b is another pod of the same deployment.
			a, b := newPod(t, iss, cfg), newPod(t, iss, cfg)
			tk := a.create(carol, map[string]any{"title": "hand over", "assignee_id": dave})
			path := "/tasks/" + tk.ID.String()
			for _, pod := range []*env{a, b} {
				if r := pod.do(req{method: "GET", path: path, as: dave}); r.status != http.StatusOK {
					t.Fatalf("assignee's GET before the change: %d %s", r.status, r.body)
				}
			}

			r := a.do(req{method: "PATCH", path: path, as: carol, body: map[string]any{"assignee_id": tc.assignee}})
			if r.status != http.StatusOK {
				t.Fatalf("PATCH assignee_id: %d %s", r.status, r.body)
			}
			for name, pod := range map[string]*env{"a": a, "b": b} {
				hits := pod.cacheResults()["hit"]
				if r := pod.do(req{method: "GET", path: path, as: dave}); r.status != http.StatusNotFound {
					t.Errorf("pod %s: former assignee's GET: %d %s", name, r.status, r.body)
				}
				if got := pod.cacheResults()["hit"]; got != hits+1 {
					t.Errorf("pod %s: the GET was not answered from the cache (%v hits, was %v)", name, got, hits)
				}
				if r := pod.do(req{method: "PATCH", path: path, as: dave, body: map[string]any{"status": "done"}}); r.status != http.StatusNotFound {
					t.Errorf("pod %s: former assignee's PATCH: %d %s", name, r.status, r.body)
				}
				// The owner still reads it, as the change left it.
				r := pod.do(req{method: "GET", path: path, as: carol})
				if r.status != http.StatusOK {
					t.Fatalf("pod %s: owner's GET: %d %s", name, r.status, r.body)
				}
				if got := r.task(t); got.Status != task.StatusTodo || (got.AssigneeID == nil) != (tc.assignee == nil) ||
					(got.AssigneeID != nil && *got.AssigneeID != next) {
					t.Errorf("pod %s: task after the change: %s", name, r.body)
				}
			}
		})
	}
}
