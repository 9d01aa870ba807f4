package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/shared/loadgen"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

// TestMain is also the entry of the ceiling servers BenchmarkLoad runs as
// processes of their own (see serveCeiling).
func TestMain(m *testing.M) {
	if kind := os.Getenv(ceilingEnvName); kind != "" {
		os.Exit(serveCeiling(kind))
	}
	pgtest.Main(m)
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		record []time.Duration
		q      float64
		want   time.Duration
		within float64 // relative error allowed
	}{
		{"empty", nil, 0.5, 0, 0},
		{"exact below 128ns", []time.Duration{5, 7, 9}, 0.5, 7, 0},
		{"single", []time.Duration{3 * time.Millisecond}, 0.99, 3 * time.Millisecond, 0},
		{"median of 1..1000µs", spread(1000, time.Microsecond), 0.5, 500 * time.Microsecond, 0.008},
		{"p99 of 1..1000µs", spread(1000, time.Microsecond), 0.99, 990 * time.Microsecond, 0.008},
		{"p100 is the maximum", spread(1000, time.Microsecond), 1, 1000 * time.Microsecond, 0},
		{"negative counts as 0", []time.Duration{-time.Second}, 0.5, 0, 0},
		{"hours", []time.Duration{3 * time.Hour}, 0.5, 3 * time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := loadgen.NewHistogram()
			for _, d := range tt.record {
				h.Record(d)
			}
			got := h.Quantile(tt.q)
			diff := float64(got - tt.want)
			if diff < 0 {
				diff = -diff
			}
			if diff > tt.within*float64(tt.want) {
				t.Errorf("Quantile(%v) = %v, want %v within %.1f%%", tt.q, got, tt.want, tt.within*100)
			}
			if tt.record != nil && got > h.Quantile(1) {
				t.Errorf("Quantile(%v) = %v above the maximum %v", tt.q, got, h.Quantile(1))
			}
		})
	}
}

func spread(n int, unit time.Duration) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(i+1) * unit
	}
	return ds
}

func TestHistogramMerge(t *testing.T) {
	t.Parallel()
	a, b := loadgen.NewHistogram(), loadgen.NewHistogram()
	for _, d := range spread(500, time.Microsecond) {
		a.Record(d)
		b.Record(d + 500*time.Microsecond)
	}
	a.Merge(b)
	if a.Count() != 1000 {
		t.Errorf("Count = %d", a.Count())
	}
	if got := a.Quantile(0.5); got < 496*time.Microsecond || got > 504*time.Microsecond {
		t.Errorf("merged median %v", got)
	}
}

// stepCounter is a step that records what Run made it do: calls and
// failures, the most in flight at once, and when each call began. Worker 3
// fails every call; the others sleep 2ms and succeed. The first call of
// each worker waits until all four have begun (or 10s), so that the
// concurrency shows however the machine schedules them.
type stepCounter struct {
	calls, fails, inFlight, peak atomic.Int64
	arrived                      atomic.Int64
	all                          chan struct{} // closed when all four first calls have begun
	mu                           sync.Mutex
	began                        []time.Time
}

var errWorker3 = errors.New("worker 3 fails")

func newStepCounter() *stepCounter { return &stepCounter{all: make(chan struct{})} }

func (s *stepCounter) step(first []bool) loadgen.Step {
	return func(ctx context.Context, worker int) error {
		s.mu.Lock()
		s.began = append(s.began, time.Now())
		s.mu.Unlock()
		s.calls.Add(1)
		cur := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for p := s.peak.Load(); cur > p && !s.peak.CompareAndSwap(p, cur); p = s.peak.Load() {
		}
		if first[worker] {
			first[worker] = false
			if s.arrived.Add(1) == 4 {
				close(s.all)
			}
			select {
			case <-s.all:
			case <-time.After(10 * time.Second):
			}
		}
		time.Sleep(2 * time.Millisecond)
		if worker == 3 {
			s.fails.Add(1)
			return errWorker3
		}
		return nil
	}
}

// Run keeps Concurrency requests in flight and counts every request sent
// in the measured window, errors apart. Without a warm-up every call is in
// the window, so the counts must equal what the step saw: exact however
// many requests a loaded machine manages.
func TestRun(t *testing.T) {
	t.Parallel()
	s := newStepCounter()
	o := loadgen.Options{Concurrency: 4, Duration: 300 * time.Millisecond}
	r := loadgen.Run(t.Context(), "sleep", o, s.step(make([]bool, 4)))
	if s.peak.Load() != 4 {
		t.Errorf("peak concurrency %d, want 4", s.peak.Load())
	}
	if r.Requests+r.Errors != s.calls.Load() || r.Errors != s.fails.Load() {
		t.Errorf("counted %d requests and %d errors; the step saw %d calls, %d failed", r.Requests, r.Errors, s.calls.Load(), s.fails.Load())
	}
	if !errors.Is(r.FirstError, errWorker3) {
		t.Errorf("first error %v", r.FirstError)
	}
	if r.Latency.Count() != uint64(r.Requests) {
		t.Errorf("histogram holds %d, want the %d successes", r.Latency.Count(), r.Requests)
	}
	// Upper bounds hold on any machine: every call takes at least 2ms.
	// 4 workers × 300ms / ≥2ms: at most 600, plus one each at the end.
	if measured := r.Requests + r.Errors; measured > 4*150+4 {
		t.Errorf("%d requests measured", measured)
	}
	if p50 := r.Latency.Quantile(0.5); r.Requests > 0 && p50 < 2*time.Millisecond {
		t.Errorf("p50 %v below the step's sleep", p50)
	}
	if rate := r.Rate(); rate > 4/0.002 {
		t.Errorf("rate %.0f above what the workers can do", rate)
	}
}

// The warm-up is run but not counted: a call that began before the
// warm-up could have ended is never in the result.
func TestRunLeavesOutTheWarmup(t *testing.T) {
	t.Parallel()
	s := newStepCounter()
	o := loadgen.Options{Concurrency: 4, Warmup: 300 * time.Millisecond, Duration: 100 * time.Millisecond}
	start := time.Now()
	r := loadgen.Run(t.Context(), "sleep", o, s.step(make([]bool, 4)))
	// Run's window opens no sooner than start + Warmup.
	early := int64(0)
	for _, b := range s.began {
		if b.Before(start.Add(o.Warmup)) {
			early++
		}
	}
	if early == 0 {
		t.Fatal("no call began during the warm-up")
	}
	if measured := r.Requests + r.Errors; measured > s.calls.Load()-early {
		t.Errorf("%d measured of %d calls, %d of them begun in the warm-up: the warm-up was counted", measured, s.calls.Load(), early)
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	run := func(n int64, d time.Duration, err error) loadgen.Result {
		h := loadgen.NewHistogram()
		for range n {
			h.Record(d)
		}
		return loadgen.Result{Name: "x", Requests: n, Errors: 1, FirstError: err, Duration: time.Second, Latency: h}
	}
	first, second := errors.New("first"), errors.New("second")
	var r loadgen.Result
	r.Merge(run(100, time.Millisecond, first))
	r.Merge(run(300, 3*time.Millisecond, second))
	if r.Name != "x" || r.Requests != 400 || r.Errors != 2 || r.Duration != 2*time.Second || r.FirstError != first {
		t.Errorf("merged %+v", r)
	}
	if r.Rate() != 200 {
		t.Errorf("rate %v, want 200", r.Rate())
	}
	if p50 := r.Latency.Quantile(0.5); p50 < 3*time.Millisecond-time.Microsecond*30 || p50 > 3*time.Millisecond {
		t.Errorf("p50 %v", p50)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	loadgen.Run(ctx, "x", loadgen.Options{Concurrency: 2, Duration: time.Hour}, func(context.Context, int) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %v after its context ended", took)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	res := func(name string, n int64, d time.Duration) loadgen.Result {
		h := loadgen.NewHistogram()
		for range n {
			h.Record(d)
		}
		return loadgen.Result{Name: name, Requests: n, Duration: time.Second, Latency: h}
	}
	ceiling := res("bare go-redis GET", 1000, time.Millisecond)
	var r loadgen.Report
	r.Title = "title"
	r.About = [][2]string{{"machine", "2 CPUs"}}
	r.Add(ceiling, nil)
	r.Add(res("GET, cached", 640, 2*time.Millisecond), &ceiling)
	r.Check("cached GET ≥ 0.60 × bare go-redis GET", true, "0.64")
	r.Check("list p99 < 10ms", false, "12.00ms")
	var b bytes.Buffer
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"machine  2 CPUs",
		"scenario           req/s     p50     p99  errors  ratio  of ceiling\n",
		"bare go-redis GET   1000  1.00ms  1.00ms       0\n",
		"GET, cached          640  2.00ms  2.00ms       0   0.64  bare go-redis GET\n",
		"PASS  cached GET ≥ 0.60 × bare go-redis GET  0.64\n",
		"FAIL  list p99 < 10ms                        12.00ms\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if r.Passed() {
		t.Error("Passed with a failed target")
	}
}

// The ceilings answer like a function: same bytes, same headers.
func TestCeilingHandlers(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db, store := newStore(t)
	tk, err := store.Create(ctx, "", task.Task{Title: "ceiling", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "alice", Labels: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	body = append(body, '\n') // as the functions end a body
	h := http.Header{"Content-Type": {"application/json"}, "Etag": {`"1"`}}

	opts, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	prefix := "loadgen-test:" + uuid.NewString() + ":"
	if err := rdb.Set(ctx, prefix+tk.ID.String(), body, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	// Cleanups, not defers: the parallel subtests run after this returns.
	t.Cleanup(func() {
		rdb.Del(context.Background(), prefix+tk.ID.String())
		rdb.Close()
	})

	tests := []struct {
		name    string
		handler http.Handler
	}{
		{"static", loadgen.StaticHandler(body, h)},
		{"redis", loadgen.RedisHandler(rdb, func(id string) string { return prefix + id }, h)},
		{"pgx", loadgen.PgxHandler(db.Primary, h)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/tasks/"+tk.ID.String(), nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if diff := cmp.Diff(string(body), rec.Body.String()); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if got := rec.Header().Get("Etag"); got != `"1"` {
				t.Errorf("ETag %q", got)
			}
			if tt.name == "static" {
				return
			}
			rec = httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, httptest.NewRequest("GET", "/tasks/"+uuid.NewString(), nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("unknown id: status %d", rec.Code)
			}
		})
	}
}

// newStore returns a fresh database and the task store on it.
func newStore(t *testing.T) (*pg.DB, *task.Store) {
	db := pgtest.New(t)
	store, err := task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return db, store
}

func redisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// The list ceiling answers a first page as the list route does: the
// store's page, its cursor, and 400 for a status the store does not know.
func TestPgxListHandler(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, store := newStore(t)
	// A page and one more of "todo", one "done": one page ends with a
	// cursor, one without.
	for i := range 52 {
		st := task.StatusTodo
		if i == 7 {
			st = task.StatusDone
		}
		if _, err := store.Create(ctx, "", task.Task{Title: fmt.Sprintf("t%d", i), Status: st, Priority: task.PriorityLow, OwnerID: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	// The newest "todo" is bob's: the member scope (alice's) leaves it out.
	if _, err := store.Create(ctx, "", task.Task{Title: "bob's", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "bob"}); err != nil {
		t.Fatal(err)
	}
	alice := &task.Scope{Projects: []string{"~alice"}, Assignee: "alice"}
	h := loadgen.PgxListHandler(store, alice)

	tests := []struct {
		status    task.Status
		as        string
		wantItems int
		wantNext  bool
	}{
		{task.StatusTodo, "", 50, true},
		{task.StatusDone, "", 1, false},
		{task.StatusBlocked, "", 0, false},
		{task.StatusTodo, "member", 50, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.status)+" "+tt.as, func(t *testing.T) {
			q := task.ListQuery{Statuses: []task.Status{tt.status}, Limit: 50}
			if tt.as == "member" {
				q.Only = alice
			}
			page, err := store.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want := struct {
				Items []task.Task `json:"items"`
				Next  *string     `json:"next_cursor"`
			}{Items: page.Items}
			if page.Next != nil {
				c := page.Next.Encode()
				want.Next = &c
			}
			if len(want.Items) != tt.wantItems || (want.Next != nil) != tt.wantNext {
				t.Fatalf("store page: %d items, next %v; the test expects %d, %v", len(want.Items), want.Next != nil, tt.wantItems, tt.wantNext)
			}
			if tt.status == task.StatusTodo {
				if got := want.Items[0].OwnerID; (got == "bob") != (tt.as == "") {
					t.Fatalf("store page as %q starts with %s's task", tt.as, got)
				}
			}
			wantBody, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/tasks?status="+string(tt.status)+"&as="+tt.as, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if diff := cmp.Diff(string(wantBody)+"\n", rec.Body.String()); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/tasks?status=later", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("unknown status: %d, want 400", rec.Code)
	}
}
