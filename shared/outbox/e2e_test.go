package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

// A write through the store reaches Kafka at once as a binary-mode
// CloudEvent keyed by the task id, with data that validates against its
// schema; the outbox row is marked published.
func TestStoreWriteReachesKafka(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	topic := kafkatest.Topic(t)
	store, err := task.NewStore(db, task.WithTopic(topic), task.WithPublisher(publisher(t, kafkatest.Brokers())))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	created, err := store.Create(ctx, "alice", task.Task{Title: "Ship it", Status: task.StatusTodo, Priority: task.PriorityHigh, OwnerID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Update(ctx, "alice", created.ID, func(cur task.Task) (task.Task, error) {
		cur.Status, cur.AssigneeID = task.StatusInProgress, new("bob")
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Trash(ctx, "alice", created.ID, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows(t, db.Primary) {
		if r.Published == nil {
			t.Errorf("event %s not published at once", r.EventID)
		}
	}
	recs := consumeAll(t, kafkatest.Brokers(), topic)
	wantTypes := []string{events.TaskCreated, events.TaskUpdated, events.TaskStatusChanged, events.TaskAssigned, events.TaskTrashed}
	var gotTypes []string
	for _, r := range recs {
		gotTypes = append(gotTypes, r.Headers["ce_type"])
		h := r.Headers
		if r.Key != created.ID.String() || h["ce_partitionkey"] != r.Key || h["ce_subject"] != r.Key {
			t.Errorf("%s: key %q, partitionkey %q, subject %q; want the task id", h["ce_type"], r.Key, h["ce_partitionkey"], h["ce_subject"])
		}
		if h["ce_specversion"] != "1.0" || h["ce_source"] != events.SourceTasks || h["content-type"] != "application/json" {
			t.Errorf("%s: headers %v", h["ce_type"], h)
		}
		if _, err := uuid.Parse(h["ce_id"]); err != nil {
			t.Errorf("ce_id %q: %v", h["ce_id"], err)
		}
		if _, err := time.Parse(time.RFC3339Nano, h["ce_time"]); err != nil {
			t.Errorf("ce_time %q: %v", h["ce_time"], err)
		}
		if err := eventstest.Validate(h["ce_type"], r.Value); err != nil {
			t.Error(err)
		}
	}
	if diff := cmp.Diff(wantTypes, gotTypes); diff != "" {
		t.Errorf("event types on the topic (-want +got):\n%s", diff)
	}
}

// The fault test. Kafka is stopped while 1,000 writes run and started
// again after them: every write succeeds, the events the writers could not
// publish wait in the outbox, the relay publishes them, and then every
// event is on the topic, in order per task, each id once in effect.
func TestBrokerDownDuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: 1,000 writes")
	}
	t.Parallel()
	b, err := devkafka.Start(devkafka.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	db := pgtest.New(t)
	topic := kafkatest.Topic(t)
	store, err := task.NewStore(db, task.WithTopic(topic), task.WithPublisher(publisher(t, b.Brokers())))
	if err != nil {
		t.Fatal(err)
	}

	const (
		writers   = 8
		tasksEach = 10
		writes    = 1000
		stopAt    = 300 // the broker stops after this many writes
	)
	var (
		claimed  atomic.Int64 // writes started
		done     atomic.Int64 // writes finished
		failures atomic.Int64
	)
	finished := func() {
		if done.Add(1) == stopAt {
			b.Stop()
		}
	}
	// One writer per set of tasks, each task written in sequence: the
	// order on the topic is then that of the writes.
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			ctx := context.Background()
			writer := fmt.Sprint("writer-", w)
			var ids []uuid.UUID
			statuses := task.Statuses
			for i := 0; ; i++ {
				if claimed.Add(1) > writes {
					return
				}
				var err error
				if len(ids) < tasksEach {
					var c task.Task
					c, err = store.Create(ctx, writer, task.Task{Title: fmt.Sprint("task ", w, "-", i), Status: task.StatusTodo, Priority: task.PriorityLow, OwnerID: "o"})
					ids = append(ids, c.ID)
				} else {
					_, err = store.Update(ctx, writer, ids[i%tasksEach], func(cur task.Task) (task.Task, error) {
						cur.Title = fmt.Sprint("task ", w, "-", i)
						if i%3 == 0 {
							cur.Status = statuses[(slices.Index(statuses, cur.Status)+1)%len(statuses)]
						}
						return cur, nil
					})
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("write %d of writer %d: %v", i, w, err)
				}
				finished()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if failures.Load() > 0 {
		t.Fatalf("%d writes failed", failures.Load())
	}
	pending, err := outbox.Pending(t.Context(), db.Primary)
	if err != nil {
		t.Fatal(err)
	}
	if pending == 0 {
		t.Fatal("no event was left for the relay: the broker was not down during writes")
	}

	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	// The relay, as PingSource ticks would run it, until nothing is left.
	relayStart := time.Now()
	relayPub := publisher(t, b.Brokers())
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := outbox.Relay(t.Context(), db.Primary, relayPub, 500)
		if err == nil && res.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay did not drain the outbox: %+v, %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	relayTook := time.Since(relayStart)

	// What Kafka has, against what the outbox says was written.
	type written struct {
		id  uuid.UUID
		key string
	}
	var want []written
	for _, r := range rows(t, db.Primary) {
		want = append(want, written{r.EventID, r.Key})
	}
	recs := consumeAll(t, b.Brokers(), topic)
	seen := map[string]int{}
	gotOrder := map[string][]uuid.UUID{} // per key, first occurrences in topic order
	for _, r := range recs {
		id := r.Headers["ce_id"]
		seen[id]++
		if seen[id] == 1 {
			gotOrder[r.Key] = append(gotOrder[r.Key], uuid.MustParse(id))
		}
	}
	wantOrder := map[string][]uuid.UUID{}
	for _, w := range want {
		wantOrder[w.key] = append(wantOrder[w.key], w.id)
	}
	if diff := cmp.Diff(wantOrder, gotOrder); diff != "" {
		t.Errorf("events per task on the topic, duplicates dropped (-outbox +kafka):\n%s", diff)
	}
	dups := len(recs) - len(seen)
	t.Logf("%d writes in %v, broker stopped after write %d; %d events, %d left to the relay, relayed in %v; %d records on the topic (%d transport duplicates)",
		done.Load(), took.Round(time.Millisecond), stopAt, len(want), pending, relayTook.Round(time.Millisecond), len(recs), dups)
}

// publisherFunc adapts a function to outbox.Publisher.
type publisherFunc func(context.Context, events.Event) error

func (f publisherFunc) Publish(ctx context.Context, ev events.Event) error { return f(ctx, ev) }

// Where duplicates come from: Kafka has the event but the mark that says
// so is lost (here the publisher's caller goes away before it commits).
// The event goes out again with the same id, so a consumer that dedupes
// by ce_id sees it once.
func TestResendIsADuplicate(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	topic := kafkatest.Topic(t)
	kafka := publisher(t, kafkatest.Brokers())
	key := uuid.New()
	ids := addEvents(t, pool, topic, key, 1)
	ctx, cancel := context.WithCancel(t.Context())
	lostMark := publisherFunc(func(_ context.Context, ev events.Event) error {
		err := kafka.Publish(t.Context(), ev)
		cancel() // the mark-published update now fails, and the transaction rolls back
		return err
	})
	if _, err := outbox.PublishKey(ctx, pool, lostMark, key.String()); err == nil {
		t.Fatal("PublishKey succeeded without its mark")
	}
	if n, err := outbox.PublishKey(t.Context(), pool, kafka, key.String()); n != 1 || err != nil {
		t.Fatalf("re-publish = %d, %v", n, err)
	}
	recs := consumeAll(t, kafkatest.Brokers(), topic)
	if len(recs) != 2 || recs[0].Headers["ce_id"] != ids[0].String() || recs[1].Headers["ce_id"] != ids[0].String() {
		t.Fatalf("records %+v: want the event twice, same id", recs)
	}
}
