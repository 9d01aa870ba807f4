package notify_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// latencies collects durations from concurrent goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	at := func(q float64) float64 {
		return float64(l.d[min(len(l.d)-1, int(q*float64(len(l.d))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkSink measures events per second through notify's sink over
// HTTP, each a status change telling two people, and the latency of one
// delivery (event in, notifications committed and emails accepted).
func BenchmarkSink(b *testing.B) {
	for _, withEmail := range []bool{false, true} {
		b.Run(map[bool]string{false: "inbox only", true: "inbox and email"}[withEmail], func(b *testing.B) {
			env := newSinkEnv(b)
			const people = 50
			if withEmail {
				for i := range people {
					s := fmt.Sprintf("u%d", i)
					remember(b, env.db, s, s+"@taskfn.test")
				}
			}
			evs := make([]event.Event, b.N)
			for i := range evs {
				evs[i] = statusChanged(b, "actor", fmt.Sprintf("u%d", i%people), ptr(fmt.Sprintf("u%d", (i+1)%people)))
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var lat latencies
			var next, failed int64
			var mu sync.Mutex
			b.SetParallelism(4)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					ev := evs[next]
					next++
					mu.Unlock()
					req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), env.url+"/", ev)
					if err != nil {
						b.Error(err)
						return
					}
					t0 := time.Now()
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					lat.add(time.Since(t0))
					if resp.StatusCode != http.StatusNoContent {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			if failed > 0 {
				b.Errorf("%d deliveries failed", failed)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			lat.report(b)
			if withEmail {
				if got := len(env.smtp.Messages()); got != 2*b.N {
					b.Errorf("%d emails, want %d", got, 2*b.N)
				}
			}
		})
	}
}

// BenchmarkStatusChangeToInbox measures, without Kafka, the time from a
// status change made through the task store to the owner's inbox showing
// it: the update and its outbox rows, the events delivered to the sink
// over HTTP, and the inbox read. The Kafka leg (relay or after-commit
// publish, KafkaSource) comes on top in a cluster.
func BenchmarkStatusChangeToInbox(b *testing.B) {
	env := newSinkEnv(b)
	tasks, err := task.NewStore(env.db)
	if err != nil {
		b.Fatal(err)
	}
	tk, err := tasks.Create(context.Background(), "alice", task.Task{Title: "Flip", Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	_, seen := taskEventsAfter(b, env.db, tk.ID, 0)
	var lat latencies
	b.ResetTimer()
	for i := range b.N {
		next := task.StatusDone
		if i%2 == 1 {
			next = task.StatusTodo
		}
		t0 := time.Now()
		if _, err := tasks.Update(context.Background(), "bob", tk.ID, func(cur task.Task) (task.Task, error) {
			cur.Status = next
			return cur, nil
		}); err != nil {
			b.Fatal(err)
		}
		var evs []event.Event
		evs, seen = taskEventsAfter(b, env.db, tk.ID, seen)
		for _, ev := range evs {
			if status, body := post(b, env.url, ev); status != http.StatusNoContent {
				b.Fatalf("%d %s", status, body)
			}
		}
		page, err := env.store.List(context.Background(), notify.ListQuery{Recipient: "alice", Limit: 1})
		if err != nil || page.Unread != int64(i+1) {
			b.Fatalf("inbox after %d changes: %+v, %v", i+1, page, err)
		}
		lat.add(time.Since(t0))
	}
	b.StopTimer()
	lat.report(b)
}

// taskEventsAfter returns entity id's events (a task or a report) after
// outbox row after, oldest first, as relay-outbox would publish them, and
// the last row's id.
func taskEventsAfter(t testing.TB, db *pg.DB, id uuid.UUID, after int64) ([]event.Event, int64) {
	t.Helper()
	const q = `
SELECT id, event_id, topic, key, type, source, subject, data, created_at
FROM outbox
WHERE key = $1
  AND id > $2
ORDER BY id`
	rows, err := db.Primary.Query(context.Background(), q, id.String(), after)
	if err != nil {
		t.Fatal(err)
	}
	last := after
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event.Event, error) {
		var ev events.Event
		if err := r.Scan(&last, &ev.ID, &ev.Topic, &ev.Key, &ev.Type, &ev.Source, &ev.Subject, &ev.Data, &ev.Time); err != nil {
			return event.Event{}, err
		}
		return ev.CloudEvent()
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs, last
}
