package taskapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/taskfn/taskfn/shared/task"
)

// Handler benchmarks: one request through the real router, token
// verification (cached after the first), policy and PostgreSQL; no network
// hop, so the figures are the function's own cost. Run with make bench.

func benchRequest(b *testing.B, e *env, method, path, who string, body []byte) *http.Request {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+e.tokens[who])
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func serve(b *testing.B, e *env, method, path, who string, body []byte, want int) {
	rec := httptest.NewRecorder()
	e.srv.Config.Handler.ServeHTTP(rec, benchRequest(b, e, method, path, who, body))
	if rec.Code != want {
		b.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
}

func BenchmarkRoutes(b *testing.B) {
	e := newEnv(b)
	seed := make([]task.Task, 200)
	for i := range seed {
		seed[i] = e.create(carol, map[string]any{"title": fmt.Sprintf("seed %d", i), "status": []string{"todo", "done"}[i%2]})
	}
	body := []byte(`{"title":"bench","priority":"high","labels":["a","b"]}`)
	b.Run("create-task", func(b *testing.B) {
		for b.Loop() {
			serve(b, e, "POST", "/tasks", carol, body, 201)
		}
	})
	b.Run("get-task", func(b *testing.B) {
		i := 0
		for b.Loop() {
			serve(b, e, "GET", "/tasks/"+seed[i%len(seed)].ID.String(), carol, nil, 200)
			i++
		}
	})
	b.Run("list-tasks", func(b *testing.B) {
		for b.Loop() {
			serve(b, e, "GET", "/tasks?status=todo&limit=50", carol, nil, 200)
		}
	})
	b.Run("update-task", func(b *testing.B) {
		i := 0
		for b.Loop() {
			st := []string{"in_progress", "blocked"}[i%2]
			serve(b, e, "PATCH", "/tasks/"+seed[0].ID.String(), carol, []byte(`{"status":"`+st+`"}`), 200)
			i++
		}
	})
	b.Run("delete-task", func(b *testing.B) {
		ids := make([]string, 0, 1024)
		for b.Loop() {
			if len(ids) == 0 {
				b.StopTimer()
				for range cap(ids) {
					ids = append(ids, e.create(carol, map[string]any{"title": "doomed"}).ID.String())
				}
				b.StartTimer()
			}
			serve(b, e, "DELETE", "/tasks/"+ids[len(ids)-1], carol, nil, 204)
			ids = ids[:len(ids)-1]
		}
	})
}
