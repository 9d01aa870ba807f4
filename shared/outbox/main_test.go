package outbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// The broker is shared by the tests that do not stop it; each uses its
// own topics.
func TestMain(m *testing.M) { kafkatest.Main(m, pgtest.Main) }

// publisher is a publisher on brokers with kafkatest's settings, closed
// when t ends.
func publisher(t testing.TB, brokers []string) *kafka.Publisher {
	t.Helper()
	return kafkatest.Publisher(t, kafkatest.Config(brokers))
}

func snapshot(id uuid.UUID) events.TaskSnapshot {
	now := time.Now().UTC()
	return events.TaskSnapshot{ID: id, Title: "t", Status: "todo", Priority: "low", OwnerID: "o", Labels: []string{}, CreatedAt: now, UpdatedAt: now, Version: 1}
}

// addEvents adds n events for key to the outbox, one transaction each,
// and returns their ids in order.
func addEvents(t testing.TB, pool *pgxpool.Pool, topic string, key uuid.UUID, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for range n {
		ev, err := events.NewTaskEvent(topic, key, events.TaskUpdatedData{Changed: []string{"title"}, Task: snapshot(key)})
		if err != nil {
			t.Fatal(err)
		}
		if err := pg.InTx(context.Background(), pool, func(tx pgx.Tx) error { return outbox.Add(context.Background(), tx, ev) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// recorder is a Publisher that remembers what it was given; fail, when
// set, decides per event whether it fails instead.
type recorder struct {
	mu   sync.Mutex
	got  []events.Event
	fail func(events.Event) error
}

func (r *recorder) Publish(_ context.Context, ev events.Event) error {
	if r.fail != nil {
		if err := r.fail(ev); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, ev)
	return nil
}

func (r *recorder) ids() []uuid.UUID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uuid.UUID, len(r.got))
	for i, ev := range r.got {
		out[i] = ev.ID
	}
	return out
}

var errDown = fmt.Errorf("%w: test says so", events.ErrUnavailable)

// outboxRow is what the tests read back of a row.
type outboxRow struct {
	EventID   uuid.UUID  `db:"event_id"`
	Key       string     `db:"key"`
	Published *time.Time `db:"published_at"`
	Attempts  int        `db:"attempts"`
	LastError *string    `db:"last_error"`
}

func rows(t testing.TB, pool *pgxpool.Pool) []outboxRow {
	t.Helper()
	r, _ := pool.Query(context.Background(), `SELECT event_id, key, published_at, attempts, last_error FROM outbox ORDER BY id`)
	out, err := pgx.CollectRows(r, pgx.RowToStructByName[outboxRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// record is one consumed Kafka record, reduced to what the tests check.
type record struct {
	Partition int32
	Offset    int64
	Key       string
	Headers   map[string]string
	Value     []byte
}

// consumeAll reads every record of topic up to the end of each partition
// as of the call.
func consumeAll(t testing.TB, brokers []string, topic string) []record {
	t.Helper()
	var out []record
	for _, m := range kafkatest.Records(t, brokers, topic) {
		out = append(out, record{Partition: m.Partition, Offset: m.Offset, Key: string(m.Key), Headers: kafkatest.Headers(m), Value: m.Value})
	}
	return out
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return false
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
