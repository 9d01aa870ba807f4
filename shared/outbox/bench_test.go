package outbox_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// fill puts n pending events into the outbox, perKey to a key, with a
// realistic payload (a created task, about 400 bytes), and returns the keys.
func fill(b *testing.B, pool *pgxpool.Pool, topic string, n, perKey int) []string {
	b.Helper()
	id := uuid.New()
	data, err := json.Marshal(events.TaskCreatedData{Actor: "alice", Task: snapshot(id)})
	if err != nil {
		b.Fatal(err)
	}
	const q = `
INSERT INTO outbox (event_id, topic, key, type, source, subject, data)
SELECT gen_random_uuid(), $1, k, $2, $3, k, $4
FROM (SELECT 'key-' || (g / $5) AS k FROM generate_series(0, $6 - 1) AS g ORDER BY g) AS keys`
	if _, err := pool.Exec(b.Context(), q, topic, events.TaskCreated, events.SourceTasks, data, perKey, n); err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 0, n/perKey+1)
	for i := 0; i*perKey < n; i++ {
		keys = append(keys, fmt.Sprint("key-", i))
	}
	return keys
}

// BenchmarkPublishKey is the writers' path: each publishes its task's one
// new event right after commit. One writer shows the latency a write pays;
// eight share produce requests, as concurrent requests of a pod do.
func BenchmarkPublishKey(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) { benchmarkPublishKey(b, writers) })
	}
}

func benchmarkPublishKey(b *testing.B, writers int) {
	pool := pgtest.New(b).Primary
	pub := publisher(b, kafkatest.Brokers())
	topic := kafkatest.Topic(b)
	keys := fill(b, pool, topic, b.N, 1)
	next := make(chan string, len(keys))
	for _, k := range keys {
		next <- k
	}
	close(next)
	publish := func() {
		if n, err := outbox.PublishKey(b.Context(), pool, pub, <-next); err != nil || n != 1 {
			b.Errorf("PublishKey = %d, %v", n, err)
		}
	}
	b.ResetTimer()
	if writers == 1 {
		for range b.N {
			publish()
		}
	} else {
		b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				publish()
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRelay drains a backlog of b.N events, one run after another
// with the default batch, as consecutive ticks would.
func BenchmarkRelay(b *testing.B) {
	for _, perKey := range []int{1, 10, 100} {
		b.Run(fmt.Sprint("events_per_key=", perKey), func(b *testing.B) {
			pool := pgtest.New(b).Primary
			pub := publisher(b, kafkatest.Brokers())
			fill(b, pool, kafkatest.Topic(b), b.N, perKey)
			b.ResetTimer()
			published := 0
			for published < b.N {
				res, err := outbox.Relay(b.Context(), pool, pub, 1000)
				if err != nil {
					b.Fatal(err)
				}
				published += res.Published
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
