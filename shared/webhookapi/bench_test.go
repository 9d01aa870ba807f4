package webhookapi_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Fan-out's size and ceilings (BENCHMARKS.md): every event delivered to
// every receiver exactly once, and the 99th percentile of the delay from
// the event's time to its arrival at a receiver under fanOutP99.
const (
	fanOutEvents    = 1000
	fanOutReceivers = 10
	fanOutSenders   = 8 // partitions delivering at once, as a KafkaSource would
	fanOutP99       = 2 * time.Second
)

// BenchmarkWebhookFanOut sends 1,000 task events through the
// deliver-webhooks sink over HTTP, 8 at a time, to 10 webhooks with a
// loopback receiver each, and measures each delivery's delay (event time
// to arrival, the receiver verifying nothing: the signing is in the
// delay) and that each arrives once. Real PostgreSQL; no Kafka leg.
func BenchmarkWebhookFanOut(b *testing.B) {
	e := newEnv(b, testConfig(true))
	var (
		mu     sync.Mutex
		delays []time.Duration
		seen   = map[[2]string]int{}
	)
	for range fanOutReceivers {
		rc := newReceiver(b, func(int, http.ResponseWriter) {})
		rc.answer = func(n int, w http.ResponseWriter) {
			got := rc.received()[n-1]
			mu.Lock()
			delays = append(delays, got.at.Sub(got.ev.Time()))
			seen[[2]string{rc.srv.URL, got.ev.ID()}]++
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}
		e.hook(maint, ptr("~maint"), rc, nil)
	}
	b.ResetTimer()
	for range b.N {
		mu.Lock()
		delays, seen = nil, map[[2]string]int{}
		mu.Unlock()
		evs := make(chan event.Event)
		var wg sync.WaitGroup
		start := time.Now()
		for range fanOutSenders {
			wg.Go(func() {
				for ev := range evs {
					ev.SetTime(time.Now())
					if got := e.send(ev); got != http.StatusNoContent {
						b.Errorf("sink: %d", got)
					}
				}
			})
		}
		for range fanOutEvents {
			evs <- taskEvent(b, "~maint")
		}
		close(evs)
		wg.Wait()
		want := fanOutEvents * fanOutReceivers
		deadline := time.Now().Add(time.Minute)
		for {
			mu.Lock()
			n := len(delays)
			mu.Unlock()
			if n >= want || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		elapsed := time.Since(start)
		if res := e.tick(); res.Delivered+res.Retrying+res.Failed != 0 {
			b.Errorf("left for the tick: %+v", res)
		}
		mu.Lock()
		if len(seen) != want {
			b.Errorf("%d (receiver, event) pairs delivered, want %d", len(seen), want)
		}
		for k, n := range seen {
			if n != 1 {
				b.Errorf("%v delivered %d times", k, n)
			}
		}
		slices.Sort(delays)
		p := func(q float64) time.Duration { return delays[int(q*float64(len(delays)-1))] }
		b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(delays[len(delays)-1].Microseconds())/1000, "max-ms")
		if p(0.99) > fanOutP99 {
			b.Errorf("p99 delay %s over the ceiling %s", p(0.99), fanOutP99)
		}
		mu.Unlock()
	}
}
