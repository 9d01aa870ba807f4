package ratelimit_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/ratelimit"
)

// testConfig limits every class to 3 requests a minute, under a key
// prefix of this test's own on the local Redis (TEST_REDIS_URL), emptied
// when t ends. Leases are off: every check asks Redis.
func testConfig(t testing.TB) ratelimit.Config {
	t.Helper()
	url := os.Getenv("TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	three := ratelimit.Quota{Count: 3, Window: time.Minute}
	cfg := ratelimit.Config{
		Enabled: true, Reads: three, Writes: three, Reports: three,
		KeyPrefix: "taskfn-test:" + hex.EncodeToString(b) + ":",
		RedisURL:  url,
		// Generous: -race and parallel test packages slow Redis calls down.
		Timeout: 250 * time.Millisecond, PoolSize: 4,
		BreakerFailures: 3, BreakerCooldown: time.Minute, BreakerProbes: 1,
	}
	rdb := cachetest.Client(t, url)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, "rate:"+cfg.KeyPrefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	return cfg
}

// newLimiter is cfg's limiter on a registry of its own.
func newLimiter(t testing.TB, cfg ratelimit.Config) (*ratelimit.Limiter, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := ratelimit.New(cfg, reg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, reg
}

// world is three routes behind a gate limited by one limiter, as the
// functions mount them: GET /tasks/{id} and POST /tasks by method (reads,
// writes), GET /reports/{id} as reports. Each answers 204.
type world struct {
	t      *testing.T
	iss    *authtest.Issuer
	srv    *httptest.Server
	reg    *prometheus.Registry
	seen   atomic.Int64 // callers the gate's seen hook was told of
	tokens map[string]string
}

func newWorld(t *testing.T, cfg ratelimit.Config) *world {
	t.Helper()
	lim, reg := newLimiter(t, cfg)
	w := &world{t: t, iss: authtest.NewIssuer(t), reg: reg, tokens: map[string]string{}}
	v, err := auth.NewVerifier(w.iss.Config(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.NewGate(v, nil, func(context.Context, auth.Identity) error { w.seen.Add(1); return nil })
	if err != nil {
		t.Fatal(err)
	}
	ok := func(w http.ResponseWriter, _ *http.Request) error { w.WriteHeader(http.StatusNoContent); return nil }
	tasks, reports := g.WithLimit(lim.ByMethod()), g.WithLimit(lim.As(ratelimit.Reports))
	h := httpx.NewRouter(zerolog.Nop(), prometheus.NewRegistry(), func(context.Context) error { return nil },
		tasks.Route("get-task", http.MethodGet, "/tasks/:id", ok),
		tasks.Route("create-task", http.MethodPost, "/tasks", ok),
		reports.Route("get-report", http.MethodGet, "/reports/:id", ok),
	)
	w.srv = httptest.NewServer(h)
	t.Cleanup(w.srv.Close)
	return w
}

// reply is a response with its body read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

const taskPath, reportPath = "/tasks/0f8c1f3e-6b51-4b8e-9a51-0c2d4f1e2a10", "/reports/0f8c1f3e-6b51-4b8e-9a51-0c2d4f1e2a10"

// do sends method path as who, and checks a refusal against openapi.yaml.
func (w *world) do(method, path, who string) reply {
	w.t.Helper()
	tok, ok := w.tokens[who]
	if !ok {
		tok = w.iss.Token(w.t, who, auth.RoleMember)
		w.tokens[who] = tok
	}
	req, err := http.NewRequest(method, w.srv.URL+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := w.srv.Client().Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusTooManyRequests {
		apispec.Check(w.t, method, path, resp, body)
	}
	return reply{resp.StatusCode, resp.Header, body}
}

var rateLimitField = regexp.MustCompile(`^"(reads|writes|reports)";r=([0-9]+);t=([0-9]+)$`)

// checkHeaders checks r's fields: the policy of class, r remaining and an
// effective window of about t seconds (a second less when the clock has
// moved on since Redis answered).
func checkHeaders(t *testing.T, r reply, class string, remaining, window int) {
	t.Helper()
	if got, want := r.header.Get("RateLimit-Policy"), `"`+class+`";q=3;w=60`; got != want {
		t.Errorf("RateLimit-Policy %q, want %q", got, want)
	}
	m := rateLimitField.FindStringSubmatch(r.header.Get("RateLimit"))
	if m == nil {
		t.Fatalf("RateLimit %q is not the draft's syntax", r.header.Get("RateLimit"))
	}
	gotT, _ := strconv.Atoi(m[3])
	if m[1] != class || m[2] != strconv.Itoa(remaining) || gotT > window || gotT < window-1 {
		t.Errorf("RateLimit %q, want %q;r=%d;t=%d", r.header.Get("RateLimit"), class, remaining, window)
	}
}

// With 3 requests a minute per class, GCRA gives one back every 20 s: t
// is the time until all 3 are back, Retry-After until the next one.
func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, w *world)
	}{
		{"under the limit: allowed, with the headers", func(t *testing.T, w *world) {
			r := w.do(http.MethodGet, taskPath, "alice")
			if r.status != http.StatusNoContent {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			checkHeaders(t, r, "reads", 2, 20)
			checkHeaders(t, w.do(http.MethodGet, taskPath, "alice"), "reads", 1, 40)
		}},
		{"over the limit: 429, Retry-After and the headers", func(t *testing.T, w *world) {
			for range 3 {
				if r := w.do(http.MethodGet, taskPath, "alice"); r.status != http.StatusNoContent {
					t.Fatalf("status %d under the limit: %s", r.status, r.body)
				}
			}
			r := w.do(http.MethodGet, taskPath, "alice")
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("status %d over the limit, want 429", r.status)
			}
			var p httpx.Problem
			if err := json.Unmarshal(r.body, &p); err != nil || p.Type != httpx.ProblemBase+"too-many-requests" || p.Instance != taskPath {
				t.Errorf("problem %s (%v)", r.body, err)
			}
			if ra := r.header.Get("Retry-After"); ra != "20" && ra != "19" {
				t.Errorf("Retry-After %q, want the 20 s until one request is back", ra)
			}
			checkHeaders(t, r, "reads", 0, 20)
			if got := metric(t, w.reg, "taskfn_ratelimit_limited_total", "reads"); got != 1 {
				t.Errorf("taskfn_ratelimit_limited_total{class=reads} = %v, want 1", got)
			}
			if n := w.seen.Load(); n != 3 {
				t.Errorf("the seen hook ran %d times, want 3: a refused request must stop before it", n)
			}
			// A refusal charges nothing: the next is refused no longer.
			first, _ := strconv.Atoi(r.header.Get("Retry-After"))
			if r2 := w.do(http.MethodGet, taskPath, "alice"); r2.status != http.StatusTooManyRequests || atoi(r2.header.Get("Retry-After")) > first {
				t.Errorf("second refusal: %d, Retry-After %q after %q", r2.status, r2.header.Get("Retry-After"), r.header.Get("Retry-After"))
			}
		}},
		{"each caller has its own quota", func(t *testing.T, w *world) {
			for range 4 {
				w.do(http.MethodGet, taskPath, "alice")
			}
			r := w.do(http.MethodGet, taskPath, "bob")
			if r.status != http.StatusNoContent {
				t.Fatalf("bob: status %d after alice used her quota: %s", r.status, r.body)
			}
			checkHeaders(t, r, "reads", 2, 20)
		}},
		{"classes are independent", func(t *testing.T, w *world) {
			for range 4 {
				w.do(http.MethodGet, taskPath, "alice")
			}
			r := w.do(http.MethodPost, "/tasks", "alice")
			if r.status != http.StatusNoContent {
				t.Fatalf("a write after the reads ran out: status %d: %s", r.status, r.body)
			}
			checkHeaders(t, r, "writes", 2, 20)
			// A GET, but a report route: reports, not reads.
			r = w.do(http.MethodGet, reportPath, "alice")
			if r.status != http.StatusNoContent {
				t.Fatalf("a report read after the reads ran out: status %d: %s", r.status, r.body)
			}
			checkHeaders(t, r, "reports", 2, 20)
		}},
		{"writes and reports refuse too", func(t *testing.T, w *world) {
			for _, c := range []struct{ method, path, class string }{{http.MethodPost, "/tasks", "writes"}, {http.MethodGet, reportPath, "reports"}} {
				for range 3 {
					w.do(c.method, c.path, "carol")
				}
				r := w.do(c.method, c.path, "carol")
				if r.status != http.StatusTooManyRequests {
					t.Fatalf("%s %s: status %d, want 429", c.method, c.path, r.status)
				}
				checkHeaders(t, r, c.class, 0, 20)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newWorld(t, testConfig(t)))
		})
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// blackHole accepts connections and never answers, as a hung Redis.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// Redis down or hung: requests go on, counted, and once the breaker opens
// no check waits for Redis at all.
func TestFailOpen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		addr func(*testing.T) string
	}{
		{"refused", closedPort},
		{"hung", blackHole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.RedisURL = "redis://" + tc.addr(t) + "/0"
			cfg.Timeout = 50 * time.Millisecond
			lim, reg := newLimiter(t, cfg)
			for i := range cfg.BreakerFailures {
				start := time.Now()
				d, err := lim.Allow(t.Context(), ratelimit.Reads, "alice")
				if !d.Allowed || !d.FailedOpen || err == nil {
					t.Fatalf("check %d: %+v, %v; want allowed, failed open, with the cause", i, d, err)
				}
				if took := time.Since(start); took > time.Second {
					t.Errorf("check %d took %s: REDIS_TIMEOUT should bound it", i, took)
				}
			}
			if got := metric(t, reg, "taskfn_ratelimit_breaker_state", ""); got != 2 {
				t.Fatalf("breaker state %v after %d failures, want 2 (open)", got, cfg.BreakerFailures)
			}
			start := time.Now()
			d, err := lim.Allow(t.Context(), ratelimit.Writes, "alice")
			if !d.Allowed || !errors.Is(err, gobreaker.ErrOpenState) {
				t.Errorf("with the breaker open: %+v, %v", d, err)
			}
			if took := time.Since(start); took > 5*time.Millisecond {
				t.Errorf("a check with the breaker open took %s: it should not touch the network", took)
			}
			if got := metric(t, reg, "taskfn_ratelimit_fail_open_total", "reads"); got != float64(cfg.BreakerFailures) {
				t.Errorf("fail_open_total{reads} = %v, want %d", got, cfg.BreakerFailures)
			}
			if got := metric(t, reg, "taskfn_ratelimit_fail_open_total", "writes"); got != 1 {
				t.Errorf("fail_open_total{writes} = %v, want 1", got)
			}
			// The headers: the policy, no RateLimit (nothing was counted).
			h := http.Header{}
			d.SetHeaders(h)
			if h.Get("RateLimit-Policy") != `"writes";q=3;w=60` || h.Get("RateLimit") != "" {
				t.Errorf("headers of a failed-open check: %v", h)
			}
		})
	}
}

// Through the gate: a Redis outage serves the request.
func TestFailOpenServes(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.RedisURL = "redis://" + closedPort(t) + "/0"
	w := newWorld(t, cfg)
	r := w.do(http.MethodGet, taskPath, "alice")
	if r.status != http.StatusNoContent || r.header.Get("RateLimit") != "" || r.header.Get("RateLimit-Policy") == "" {
		t.Errorf("status %d, headers %v", r.status, r.header)
	}
	if got := metric(t, w.reg, "taskfn_ratelimit_fail_open_total", "reads"); got != 1 {
		t.Errorf("fail_open_total{reads} = %v, want 1", got)
	}
}

// Leases: a busy caller's requests are taken from Redis in growing
// batches, never more than its quota, however many pods take them.
func TestLeases(t *testing.T) {
	t.Parallel()
	// Long leases: nothing expires during a test, so counts are exact.
	leased := func(t *testing.T, count int, window time.Duration) ratelimit.Config {
		cfg := testConfig(t)
		cfg.Reads = ratelimit.Quota{Count: count, Window: window}
		cfg.Lease = time.Hour
		return cfg
	}
	allow := func(t *testing.T, l *ratelimit.Limiter, who string) ratelimit.Decision {
		t.Helper()
		d, err := l.Allow(t.Context(), ratelimit.Reads, who)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Run("fewer Redis calls, exact remaining", func(t *testing.T) {
		t.Parallel()
		l, reg := newLimiter(t, leased(t, 1000, time.Hour))
		for i := 1; i <= 300; i++ {
			d := allow(t, l, "alice")
			// One pod: its own leased requests are the caller's too. The
			// quota refills by 1000/h meanwhile: at most a request or two.
			if !d.Allowed || d.Remaining < 1000-i || d.Remaining > 1000-i+2 {
				t.Fatalf("request %d: %+v, want allowed with %d left", i, d, 1000-i)
			}
		}
		// Batches of 1, 2, 4, ... 64, then the cap of 100 (a tenth).
		if calls := metric(t, reg, "taskfn_ratelimit_redis_calls_total", "reads"); calls > 10 {
			t.Errorf("%v Redis calls for 300 requests, want at most 10", calls)
		}
	})
	t.Run("never over the quota", func(t *testing.T) {
		t.Parallel()
		l, reg := newLimiter(t, leased(t, 50, time.Hour))
		allowed := 0
		for range 60 {
			if allow(t, l, "alice").Allowed {
				allowed++
			}
		}
		if allowed != 50 {
			t.Errorf("%d of 60 allowed, want the quota, 50", allowed)
		}
		// The refusals after the first are answered from the pod: the next
		// request is 72 s away for everyone.
		calls := metric(t, reg, "taskfn_ratelimit_redis_calls_total", "reads")
		allow(t, l, "alice")
		if after := metric(t, reg, "taskfn_ratelimit_redis_calls_total", "reads"); after != calls {
			t.Errorf("a refusal asked Redis again (%v calls, then %v)", calls, after)
		}
		if got := metric(t, reg, "taskfn_ratelimit_limited_total", "reads"); got != 11 {
			t.Errorf("limited_total = %v, want 11", got)
		}
	})
	t.Run("two pods share the quota", func(t *testing.T) {
		t.Parallel()
		cfg := leased(t, 100, time.Hour)
		a, _ := newLimiter(t, cfg)
		b, _ := newLimiter(t, cfg)
		allowed := 0
		for i := range 200 {
			if allow(t, []*ratelimit.Limiter{a, b}[i%2], "alice").Allowed {
				allowed++
			}
		}
		// Leased and unspent on one pod when the other ran out: lost, at
		// most a lease (a tenth of the quota) per pod.
		if allowed > 100 || allowed < 80 {
			t.Errorf("%d of 200 allowed over two pods, want 80 to 100", allowed)
		}
	})
	t.Run("concurrent requests on two pods", func(t *testing.T) {
		t.Parallel()
		cfg := leased(t, 200, time.Hour)
		pods := []*ratelimit.Limiter{}
		for range 2 {
			l, _ := newLimiter(t, cfg)
			pods = append(pods, l)
		}
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for range 50 {
					d, err := pods[g%2].Allow(t.Context(), ratelimit.Reads, "alice")
					if err != nil {
						t.Error(err)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := allowed.Load(); n > 200 || n < 160 {
			t.Errorf("%d of 800 concurrent requests allowed, want 160 to 200 (the quota)", n)
		}
	})
	t.Run("small quotas ask Redis every time", func(t *testing.T) {
		t.Parallel()
		l, reg := newLimiter(t, leased(t, 19, time.Hour))
		for range 5 {
			allow(t, l, "alice")
		}
		if calls := metric(t, reg, "taskfn_ratelimit_redis_calls_total", "reads"); calls != 5 {
			t.Errorf("%v Redis calls for 5 requests, want 5: a tenth of 19 is under two", calls)
		}
	})
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, ratelimit.Config{})
	if l.ByMethod() != nil || l.As(ratelimit.Reports) != nil {
		t.Error("a disabled limiter gives a gate hook")
	}
	var none *ratelimit.Limiter
	if none.ByMethod() != nil || none.As(ratelimit.Reads) != nil || none.Close() != nil {
		t.Error("a nil limiter gives a gate hook")
	}
	d, err := l.Allow(t.Context(), ratelimit.Reads, "alice")
	h := http.Header{}
	d.SetHeaders(h)
	if !d.Allowed || err != nil || len(h) != 0 {
		t.Errorf("disabled: %+v, %v, headers %v", d, err, h)
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// metric is the value of the series of name with class (any, for "").
func metric(t testing.TB, reg *prometheus.Registry, name, class string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := class == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "class" && lp.GetValue() == class {
					match = true
				}
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s{class=%q}", name, class)
	return 0
}
