package ratelimit_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/ratelimit"
)

// BenchmarkAllow is one check and its headers, for 16 callers at once (the
// load benchmark's readers), against the local Redis, with leases as
// deployed and without (a Redis call per check). Besides ns/op it reports
// the CPU time per check of this process and of Redis (from INFO, so
// whatever else uses that Redis is counted too): what the limiter adds to
// a request, in the terms of BENCHMARKS.md's CPU table.
func BenchmarkAllow(b *testing.B) {
	for _, bc := range []struct {
		name  string
		lease time.Duration
	}{{"lease=100ms", 100 * time.Millisecond}, {"lease=0", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Reads = ratelimit.Quota{Count: 1_000_000, Window: time.Second}
			cfg.Lease = bc.lease
			cfg.PoolSize = 8 // the default
			l, _ := newLimiter(b, cfg)
			rdb := cachetest.Client(b, cfg.RedisURL)
			var callers, failedOpen atomic.Int64
			b.SetParallelism(8)
			cpu, redisCPU := processCPU(), serverCPU(b, rdb)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				who := "bench-" + strconv.FormatInt(callers.Add(1), 10)
				h := http.Header{}
				for pb.Next() {
					d, err := l.Allow(b.Context(), ratelimit.Reads, who)
					if err != nil {
						failedOpen.Add(1) // a busy machine's timeout: counted, as in production
					}
					if !d.Allowed {
						b.Errorf("refused: %+v", d)
						return
					}
					d.SetHeaders(h)
				}
			})
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/n, "cpu-µs/op")
			b.ReportMetric(float64((serverCPU(b, rdb)-redisCPU).Microseconds())/n, "redis-cpu-µs/op")
			b.ReportMetric(float64(failedOpen.Load())/n, "failed-open/op")
		})
	}
}

// BenchmarkGate is a GET through a gate over loopback HTTP, client and
// server in this process, 16 callers at once (one connection and token
// each, as the load benchmark's readers): without limits, with them as
// deployed, and with a Redis call per request. cpu-µs/op is the process's
// CPU per request, client included, the figure to compare between the
// three; redis-calls/op shows what the leases saved.
func BenchmarkGate(b *testing.B) {
	for _, bc := range []struct {
		name    string
		enabled bool
		lease   time.Duration
	}{{"limits=off", false, 0}, {"limits=on,lease=100ms", true, 100 * time.Millisecond}, {"limits=on,lease=0", true, 0}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b)
			cfg.Enabled, cfg.Lease, cfg.PoolSize = bc.enabled, bc.lease, 8
			cfg.Reads = ratelimit.Quota{Count: 1_000_000, Window: time.Second}
			lim, reg := newLimiter(b, cfg)
			iss := authtest.NewIssuer(b)
			v, err := auth.NewVerifier(iss.Config(), nil)
			if err != nil {
				b.Fatal(err)
			}
			g, err := auth.NewGate(v, nil)
			if err != nil {
				b.Fatal(err)
			}
			body := make([]byte, 400) // about a task's JSON
			ok := func(w http.ResponseWriter, _ *http.Request) error { _, err := w.Write(body); return err }
			srv := httptest.NewServer(httpx.NewRouter(zerolog.Nop(), prometheus.NewRegistry(), func(context.Context) error { return nil },
				g.WithLimit(lim.ByMethod()).Route("get-task", http.MethodGet, "/tasks/:id", ok)))
			b.Cleanup(srv.Close)
			tokens := make([]string, 64)
			for i := range tokens {
				tokens[i] = iss.Token(b, "reader-"+strconv.Itoa(i), auth.RoleAdmin)
			}
			var callers atomic.Int64
			b.SetParallelism(8)
			cpu := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				bearer := "Bearer " + tokens[int(callers.Add(1))%len(tokens)]
				client := srv.Client()
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodGet, srv.URL+"/tasks/x", nil)
					req.Header.Set("Authorization", bearer)
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/n, "cpu-µs/op")
			if bc.enabled {
				b.ReportMetric(metric(b, reg, "taskfn_ratelimit_redis_calls_total", "reads")/n, "redis-calls/op")
				b.ReportMetric(metric(b, reg, "taskfn_ratelimit_fail_open_total", "reads")/n, "failed-open/op")
			}
		})
	}
}

// processCPU is this process's user and system time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the Redis server's user and system time so far.
func serverCPU(b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(b.Context(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			s, _ := strconv.ParseFloat(v, 64)
			total += time.Duration(s * float64(time.Second))
		}
	}
	return total
}
