package outbox_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// A new key's events, queued on a write's tail and published from memory
// after commit: sent in order, the sent ones marked; a failure stops there,
// counted as PublishKey counts it, and the relay's PublishKey resumes at
// that event with nothing sent twice that was marked.
func TestPublishFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		failAt       int // index of the event that fails; -1: none
		err          error
		wantAttempts int // of the failed event
		wantLastErr  bool
	}{
		{"all sent", -1, nil, 0, false},
		{"kafka down at the second", 1, errDown, 1, true},
		{"rejected at the first", 0, fmt.Errorf("%w: too large", events.ErrRejected), 1, true},
		{"cooling down: not an attempt", 1, events.ErrCoolingDown, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t).Primary
			key := uuid.New()
			var evs []events.Event
			for range 3 {
				ev, err := events.NewTaskEvent("topic", key, events.TaskUpdatedData{Changed: []string{"title"}, Task: snapshot(key)})
				if err != nil {
					t.Fatal(err)
				}
				evs = append(evs, ev)
			}
			// One statement of three rows: ids in their order.
			err := pg.InTxBatched(t.Context(), pool, nil, func(_ pgx.Tx, tail *pgx.Batch) error {
				return outbox.Queue(tail, evs...)
			})
			if err != nil {
				t.Fatal(err)
			}
			ids := []uuid.UUID{evs[0].ID, evs[1].ID, evs[2].ID}
			rec := &recorder{fail: func(ev events.Event) error {
				if tt.failAt >= 0 && ev.ID == ids[tt.failAt] {
					return tt.err
				}
				return nil
			}}
			outbox.PublishFirst(t.Context(), pool, rec, evs)
			sent := len(ids)
			if tt.failAt >= 0 {
				sent = tt.failAt
			}
			if diff := cmp.Diff(ids[:sent], rec.ids()); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
			rs := rows(t, pool)
			for i, r := range rs {
				if r.EventID != ids[i] {
					t.Fatalf("row %d is event %s, want %s (queue order)", i, r.EventID, ids[i])
				}
				if published := r.Published != nil; published != (i < sent) {
					t.Errorf("event %d: published %t, want %t", i, published, i < sent)
				}
				switch {
				case i < sent && r.Attempts != 1:
					t.Errorf("sent event %d: attempts %d, want 1", i, r.Attempts)
				case i == tt.failAt && (r.Attempts != tt.wantAttempts || (r.LastError != nil) != tt.wantLastErr):
					t.Errorf("failed event: attempts %d, last_error %v", r.Attempts, r.LastError)
				case i > tt.failAt && tt.failAt >= 0 && r.Attempts != 0:
					t.Errorf("later event %d: attempts %d, want 0", i, r.Attempts)
				}
			}
			// The relay's publish takes up from the first unsent event.
			rec.fail = nil
			n, err := outbox.PublishKey(t.Context(), pool, rec, key.String())
			if err != nil || n != len(ids)-sent {
				t.Fatalf("PublishKey after = %d, %v; want %d", n, err, len(ids)-sent)
			}
			if diff := cmp.Diff(ids, rec.ids()); diff != "" {
				t.Errorf("published in all (-want +got):\n%s", diff)
			}
		})
	}
}

// A failing statement of the tail rolls the whole transaction back: the
// events queued before it are not there.
func TestQueueRollsBackWithTheWrite(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	key := uuid.New()
	ev, err := events.NewTaskEvent("topic", key, events.TaskUpdatedData{Changed: []string{"title"}, Task: snapshot(key)})
	if err != nil {
		t.Fatal(err)
	}
	err = pg.InTxBatched(t.Context(), pool, nil, func(_ pgx.Tx, tail *pgx.Batch) error {
		if err := outbox.Queue(tail, ev); err != nil {
			return err
		}
		return outbox.Queue(tail, ev) // the same event id again: unique
	})
	if err == nil {
		t.Fatal("a duplicate event id in the tail committed")
	}
	if rs := rows(t, pool); len(rs) != 0 {
		t.Errorf("rows after a failed tail: %+v", rs)
	}
}
