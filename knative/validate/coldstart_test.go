package validate

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// BenchmarkColdStart starts every function's binary, built as ko builds it
// (stripped, -trimpath, CGO off), b.N times against a migrated database and
// reports, per function: the binary's size, process start to /readyz 200
// (p50 and max over the starts) and the resident memory once ready. The
// pod's own share of a cold start (scheduling, the image pull) is not here;
// make images prints the image sizes. Run by make bench-coldstart.
func BenchmarkColdStart(b *testing.B) {
	fns := slices.DeleteFunc(functionDirs(b), func(n string) bool { return n == "migrate" })
	bins := buildFunctions(b, append(slices.Clone(fns), "migrate"))
	dbURL := pgtest.NewEmpty(b)
	// As in a cluster, Kafka and Redis answer (relay-outbox will not start
	// without a broker): the embedded broker and this machine's Redis.
	broker, err := devkafka.Start(devkafka.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = broker.Close() })
	prefix := "taskfn-coldstart:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	env := append(e2eEnv(b, dbURL, authtest.NewIssuer(b), authtest.NewSenderIssuer(b)),
		// exec keeps the last of duplicate keys
		"KAFKA_BROKERS="+broker.Addr(), "REDIS_URL=redis://127.0.0.1:6379/0",
		"CACHE_KEY_PREFIX="+prefix, "RATE_LIMIT_KEY_PREFIX="+prefix)
	migrateOnce(b, bins["migrate"], env)

	for _, fn := range fns {
		b.Run(fn, func(b *testing.B) {
			info, err := os.Stat(bins[fn])
			if err != nil {
				b.Fatal(err)
			}
			var ready []time.Duration
			var rss int64
			for b.Loop() {
				p, d := startFunction(b, fn, bins[fn], env)
				ready = append(ready, d)
				rss = max(rss, residentKiB(b, p.cmd.Process.Pid))
				if err := p.stop(); err != nil {
					b.Fatalf("%s: after SIGTERM: %v\n%s", fn, err, p.logs)
				}
			}
			slices.Sort(ready)
			b.ReportMetric(0, "ns/op") // the loop's time includes the shutdowns: not a figure
			b.ReportMetric(ms(ready[len(ready)/2]), "ms-ready-p50")
			b.ReportMetric(ms(ready[len(ready)-1]), "ms-ready-max")
			b.ReportMetric(float64(rss)/1024, "MiB-rss")
			b.ReportMetric(float64(info.Size())/1e6, "MB-binary")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// residentKiB is VmRSS of a running process, from /proc (Linux).
func residentKiB(t testing.TB, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
