package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestAddRejectsIncompleteEvents(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	good, err := events.NewTaskEvent("topic", uuid.New(), events.TaskDeletedData{Task: snapshot(uuid.New())})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*events.Event)
		ok     bool
	}{
		{"complete", func(*events.Event) {}, true},
		{"no id", func(e *events.Event) { e.ID = uuid.Nil }, false},
		{"no topic", func(e *events.Event) { e.Topic = "" }, false},
		{"no key", func(e *events.Event) { e.Key = "" }, false},
		{"no type", func(e *events.Event) { e.Type = "" }, false},
		{"no data", func(e *events.Event) { e.Data = nil }, false},
		{"no time", func(e *events.Event) { e.Time = time.Time{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := good
			ev.ID = uuid.New()
			tt.change(&ev)
			err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error { return outbox.Add(t.Context(), tx, ev) })
			if (err == nil) != tt.ok {
				t.Errorf("Add: %v, want ok=%t", err, tt.ok)
			}
		})
	}
}

// An event reads back from the outbox as it was added: same envelope,
// same JSON (jsonb may reorder keys, so compared as values).
func TestPublishKeyRoundTrip(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	task := uuid.New()
	want, _ := events.NewTaskEvent("topic", task, events.TaskAssignedData{Actor: "a", NewAssigneeID: new("bob"), Task: snapshot(task)})
	if err := pg.InTx(t.Context(), pool, func(tx pgx.Tx) error { return outbox.Add(t.Context(), tx, want) }); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	if n, err := outbox.PublishKey(t.Context(), pool, rec, task.String()); err != nil || n != 1 {
		t.Fatalf("PublishKey = %d, %v", n, err)
	}
	got := rec.got[0]
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []byte) bool { return jsonEqual(t, a, b) })); diff != "" {
		t.Errorf("event (-added +published):\n%s", diff)
	}
}

// PublishKey publishes one key's events in id order and marks them; other
// keys' events stay.
func TestPublishKeyPublishesOneKeyInOrder(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	a, b := uuid.New(), uuid.New()
	var wantA []uuid.UUID
	for i := range 3 {
		wantA = append(wantA, addEvents(t, pool, "topic", a, 1)...)
		if i < 2 {
			addEvents(t, pool, "topic", b, 1) // interleaved with a's
		}
	}
	// More than one transaction's worth, to cross a chunk boundary.
	wantA = append(wantA, addEvents(t, pool, "topic", a, 150)...)
	rec := &recorder{}
	n, err := outbox.PublishKey(t.Context(), pool, rec, a.String())
	if err != nil || n != len(wantA) {
		t.Fatalf("PublishKey = %d, %v; want %d", n, err, len(wantA))
	}
	if diff := cmp.Diff(wantA, rec.ids()); diff != "" {
		t.Errorf("published (-want +got):\n%s", diff)
	}
	for _, r := range rows(t, pool) {
		if published := r.Published != nil; published != (r.Key == a.String()) {
			t.Errorf("row of key %s: published %t", r.Key, published)
		}
		if r.Key == a.String() && r.Attempts != 1 {
			t.Errorf("published row: attempts %d, want 1", r.Attempts)
		}
	}
	// Nothing left: a second call publishes nothing.
	if n, err := outbox.PublishKey(t.Context(), pool, rec, a.String()); err != nil || n != 0 {
		t.Errorf("second PublishKey = %d, %v; want 0", n, err)
	}
}

// A failed publish stops the key at that event: it counts the attempt and
// keeps the error, the later events wait, and the next call resumes there.
func TestPublishKeyStopsAtFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		err          error
		wantAttempts int
		wantLastErr  bool
	}{
		{"kafka down", errDown, 1, true},
		{"event rejected", fmt.Errorf("%w: too large", events.ErrRejected), 1, true},
		{"cooling down: not an attempt", events.ErrCoolingDown, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t).Primary
			key := uuid.New()
			ids := addEvents(t, pool, "topic", key, 4)
			rec := &recorder{fail: func(ev events.Event) error {
				if ev.ID == ids[1] {
					return tt.err
				}
				return nil
			}}
			n, err := outbox.PublishKey(t.Context(), pool, rec, key.String())
			if n != 1 || !errors.Is(err, tt.err) {
				t.Fatalf("PublishKey = %d, %v; want 1, %v", n, err, tt.err)
			}
			rs := rows(t, pool)
			if rs[0].Published == nil || rs[1].Published != nil || rs[2].Published != nil || rs[2].Attempts != 0 {
				t.Errorf("rows after failure: %+v", rs)
			}
			if rs[1].Attempts != tt.wantAttempts || (rs[1].LastError != nil) != tt.wantLastErr {
				t.Errorf("failed row: attempts %d, last_error %v", rs[1].Attempts, rs[1].LastError)
			}
			rec.fail = nil
			if n, err := outbox.PublishKey(t.Context(), pool, rec, key.String()); n != 3 || err != nil {
				t.Fatalf("retry = %d, %v; want 3", n, err)
			}
			if diff := cmp.Diff(ids, rec.ids()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			if rs := rows(t, pool); rs[1].LastError != nil {
				t.Errorf("last_error kept after success: %q", *rs[1].LastError)
			}
		})
	}
}

// gate is a Publisher that holds every publish of one event until
// released, to catch a second publisher in the act.
type gate struct {
	*recorder
	hold    uuid.UUID
	reached chan struct{}
	release chan struct{}
}

func newGate(hold uuid.UUID) *gate {
	g := &gate{recorder: &recorder{}, hold: hold, reached: make(chan struct{}), release: make(chan struct{})}
	g.fail = func(ev events.Event) error {
		if ev.ID == g.hold {
			close(g.reached)
			<-g.release
		}
		return nil
	}
	return g
}

// While the relay publishes a key's pending events, a writer's immediate
// publish of a later event of that key waits for it, so the later event
// cannot overtake them; another key is not held up.
func TestPublishKeyWaitsForRelayOfSameKey(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	key, other := uuid.New(), uuid.New()
	pending := addEvents(t, pool, "topic", key, 3)
	g := newGate(pending[0])
	relayDone := make(chan error, 1)
	go func() {
		_, err := outbox.Relay(context.Background(), pool, g, 100)
		relayDone <- err
	}()
	<-g.reached // the relay holds key's lock, mid-publish

	later := addEvents(t, pool, "topic", key, 1)
	addEvents(t, pool, "topic", other, 1)
	writer := &recorder{}
	writerDone := make(chan error, 1)
	go func() {
		_, err := outbox.PublishKey(context.Background(), pool, writer, key.String())
		writerDone <- err
	}()
	// The other key goes through while key is held.
	if n, err := outbox.PublishKey(t.Context(), pool, &recorder{}, other.String()); n != 1 || err != nil {
		t.Errorf("other key: %d, %v", n, err)
	}
	select {
	case err := <-writerDone:
		t.Fatalf("writer's publish finished while the relay held the key: %v, %v", err, writer.ids())
	case <-time.After(200 * time.Millisecond):
	}
	close(g.release)
	if err := <-relayDone; err != nil {
		t.Fatal(err)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	// Whichever publisher sent it, each event went out once, in order.
	all := slices.Concat(g.ids(), writer.ids())
	var forKey []uuid.UUID
	for _, id := range all {
		if slices.Contains(pending, id) || slices.Contains(later, id) {
			forKey = append(forKey, id)
		}
	}
	if diff := cmp.Diff(slices.Concat(pending, later), forKey); diff != "" {
		t.Errorf("key's events as published (-want +got):\n%s", diff)
	}
}

// Relay takes the keys with the oldest events first, shares its batch
// among them and reports what is left.
func TestRelayBatch(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	var keys []uuid.UUID
	for range 5 {
		k := uuid.New()
		keys = append(keys, k)
		addEvents(t, pool, "topic", k, 3)
	}
	rec := &recorder{}
	steps := []struct {
		batch   int
		want    outbox.RelayResult
		wantOut int // events published so far
	}{
		{batch: 7, want: outbox.RelayResult{Keys: 3, Published: 7, Pending: 8}, wantOut: 7},
		{batch: 100, want: outbox.RelayResult{Keys: 3, Published: 8, Pending: 0}, wantOut: 15},
		{batch: 100, want: outbox.RelayResult{}, wantOut: 15},
	}
	for i, s := range steps {
		got, err := outbox.Relay(t.Context(), pool, rec, s.batch)
		if err != nil {
			t.Fatal(err)
		}
		if got != s.want {
			t.Errorf("run %d: %+v, want %+v", i, got, s.want)
		}
		if n := len(rec.ids()); n != s.wantOut {
			t.Errorf("run %d: %d published, want %d", i, n, s.wantOut)
		}
	}
	// The first run took the three oldest keys.
	first := map[string]bool{}
	for _, ev := range rec.got[:7] {
		first[ev.Key] = true
	}
	for i, k := range keys {
		if first[k.String()] != (i < 3) {
			t.Errorf("key %d in the first run: %t", i, first[k.String()])
		}
	}
}

// Kafka unreachable: Relay says so (ErrUnavailable) and stops starting
// keys; a rejected event fails its key only.
func TestRelayFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		fail          error
		failKey       int // index of the key whose first event fails
		wantPublished int
		wantUnavail   bool
	}{
		{"kafka down", errDown, -1, 0, true},
		{"one key rejected", fmt.Errorf("%w: too large", events.ErrRejected), 2, 8, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t).Primary
			var failKey string
			for i := range 5 {
				k := uuid.New()
				addEvents(t, pool, "topic", k, 2)
				if i == tt.failKey {
					failKey = k.String()
				}
			}
			rec := &recorder{fail: func(ev events.Event) error {
				if tt.failKey < 0 || ev.Key == failKey {
					return tt.fail
				}
				return nil
			}}
			res, err := outbox.Relay(t.Context(), pool, rec, 100)
			if err == nil || errors.Is(err, events.ErrUnavailable) != tt.wantUnavail {
				t.Fatalf("Relay error %v, want unavailable=%t", err, tt.wantUnavail)
			}
			if res.Published != tt.wantPublished || res.Failed < 1 || res.Pending != int64(10-tt.wantPublished) {
				t.Errorf("result %+v, want %d published", res, tt.wantPublished)
			}
		})
	}
}

// Once Kafka is unreachable the relay starts no further key: the keys it
// has not reached wait, untouched, for the next run. With one worker (a
// pool of two connections) the order is fixed: the keys before the failure
// are published, the failing one is the last tried. With many workers the
// keys already under way may each fail, but no more than the relay runs at
// once (16), of the 40 waiting.
func TestRelayStopsStartingKeysWhenKafkaIsUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		maxConns  int32
		keys      int
		downFrom  int // the publish (counting from 0) from which Kafka is unreachable
		wantTried int // keys tried, exactly (0: not fixed)
		maxTried  int // keys tried, at most
	}{
		{"one worker", 2, 10, 2, 3, 3},
		{"concurrent workers", 8, 40, 0, 0, 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := pgtest.NewConfig(t)
			cfg.MaxConns = tt.maxConns
			db, err := pg.Open(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(db.Close)
			for range tt.keys {
				addEvents(t, db.Primary, "topic", uuid.New(), 1)
			}
			var (
				mu    sync.Mutex
				calls int
				tried = map[string]bool{}
			)
			rec := &recorder{fail: func(ev events.Event) error {
				mu.Lock()
				defer mu.Unlock()
				tried[ev.Key] = true
				calls++
				if calls > tt.downFrom {
					return errDown
				}
				return nil
			}}
			res, err := outbox.Relay(t.Context(), db.Primary, rec, 100)
			if !errors.Is(err, events.ErrUnavailable) {
				t.Fatalf("Relay error %v, want ErrUnavailable", err)
			}
			mu.Lock()
			n := len(tried)
			mu.Unlock()
			if tt.wantTried > 0 && n != tt.wantTried {
				t.Errorf("%d of %d keys tried, want %d", n, tt.keys, tt.wantTried)
			}
			if n > tt.maxTried {
				t.Errorf("%d of %d keys tried, want at most %d", n, tt.keys, tt.maxTried)
			}
			failed := n - tt.downFrom
			if res.Published != tt.downFrom || res.Failed != failed || res.Pending != int64(tt.keys-tt.downFrom) {
				t.Errorf("result %+v, want %d published, %d failed", res, tt.downFrom, failed)
			}
		})
	}
}

func TestPurgePublished(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	ctx := t.Context()
	old, recent, waiting := uuid.New(), uuid.New(), uuid.New()
	addEvents(t, pool, "topic", old, 250)
	addEvents(t, pool, "topic", recent, 5)
	addEvents(t, pool, "topic", waiting, 5)
	rec := &recorder{}
	for _, k := range []uuid.UUID{old, recent} {
		if _, err := outbox.PublishKey(ctx, pool, rec, k.String()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now() - interval '8 days' WHERE key = $1`, old.String()); err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-7 * 24 * time.Hour)
	// Two at once, as two overlapping cleanup runs would: together they
	// delete each old row once, neither waits for the other.
	var (
		wg    sync.WaitGroup
		total [2]int64
		errs  [2]error
	)
	for i := range 2 {
		wg.Go(func() { total[i], errs[i] = outbox.PurgePublished(ctx, pool, cutoff, 40) })
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	if total[0]+total[1] != 250 {
		t.Errorf("purged %d + %d, want 250", total[0], total[1])
	}
	left := map[string]int{}
	for _, r := range rows(t, pool) {
		left[r.Key]++
	}
	if diff := cmp.Diff(map[string]int{recent.String(): 5, waiting.String(): 5}, left); diff != "" {
		t.Errorf("rows left (-want +got):\n%s", diff)
	}
	if n, err := outbox.PurgePublished(ctx, pool, cutoff, 0); err == nil {
		t.Errorf("batch 0 accepted: %d", n)
	}
}
