package task_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/task"
)

// recurring creates a task recurring by rule in tz, due at due.
func recurring(t *testing.T, s *task.Store, rule, tz string, due time.Time) task.Task {
	t.Helper()
	d := draft("alice", "Weekly review")
	d.DueAt, d.Recurrence, d.RecurrenceTZ = &due, &rule, tz
	d.Labels, d.Reminders, d.AssigneeID = []string{"ops"}, []string{"-PT1H"}, ptr("bob")
	created, err := s.Create(t.Context(), "alice", d)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func setStatus(t *testing.T, s *task.Store, id uuid.UUID, st task.Status) task.Task {
	t.Helper()
	up, err := s.Update(t.Context(), "alice", id, func(cur task.Task) (task.Task, error) {
		cur.Status = st
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return up
}

func createNext(t *testing.T, s *task.Store, id uuid.UUID) (task.Task, string) {
	t.Helper()
	next, why, err := s.CreateNext(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return next, why
}

func TestCreateNextFilesTheNextOccurrenceOnce(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	// Monday 2027-03-22 09:00 in Berlin (CET); the next Monday is after
	// the change to CEST, still 09:00 there.
	due := time.Date(2027, 3, 22, 9, 0, 0, 0, berlin)
	first := recurring(t, s, "FREQ=WEEKLY;BYDAY=MO;COUNT=3", "Europe/Berlin", due)

	if _, why := createNext(t, s, first.ID); why != task.NextOpen {
		t.Fatalf("an open task: %q, want %q", why, task.NextOpen)
	}
	setStatus(t, s, first.ID, task.StatusDone)
	second, why := createNext(t, s, first.ID)
	if why != task.NextFiled {
		t.Fatalf("done: %q, want %q", why, task.NextFiled)
	}
	wantDue := time.Date(2027, 3, 29, 9, 0, 0, 0, berlin)
	switch {
	case !second.DueAt.Equal(wantDue):
		t.Errorf("next due %s, want %s", second.DueAt, wantDue)
	case second.Status != task.StatusTodo || second.Title != first.Title || second.OwnerID != "alice" || *second.AssigneeID != "bob":
		t.Errorf("next occurrence %+v does not carry the fields of %+v", second, first)
	case *second.Recurrence != "FREQ=WEEKLY;BYDAY=MO;COUNT=2" || second.RecurrenceTZ != "Europe/Berlin":
		t.Errorf("next rule %q in %q, want COUNT=2 in Europe/Berlin", *second.Recurrence, second.RecurrenceTZ)
	case len(second.Reminders) != 1 || second.Reminders[0] != "-PT1H" || len(second.Labels) != 1:
		t.Errorf("next occurrence lost reminders or labels: %+v", second)
	case second.SeriesID == nil || *second.SeriesID != first.ID:
		t.Errorf("series_id %v, want the first task %s", second.SeriesID, first.ID)
	}

	// Redelivered, and done again after a reopen: still the one occurrence.
	if _, why := createNext(t, s, first.ID); why != task.NextExisting {
		t.Fatalf("redelivery: %q, want %q", why, task.NextExisting)
	}
	setStatus(t, s, first.ID, task.StatusTodo)
	if _, why := createNext(t, s, first.ID); why != task.NextOpen {
		t.Fatalf("reopened: %q, want %q", why, task.NextOpen)
	}
	setStatus(t, s, first.ID, task.StatusDone)
	if _, why := createNext(t, s, first.ID); why != task.NextExisting {
		t.Fatalf("done again: %q, want %q", why, task.NextExisting)
	}

	// The series goes on from the second, keeps its first task, and ends
	// with COUNT.
	setStatus(t, s, second.ID, task.StatusDone)
	third, why := createNext(t, s, second.ID)
	if why != task.NextFiled || *third.SeriesID != first.ID || *third.Recurrence != "FREQ=WEEKLY;BYDAY=MO;COUNT=1" {
		t.Fatalf("third: %q %+v", why, third)
	}
	setStatus(t, s, third.ID, task.StatusDone)
	if _, why := createNext(t, s, third.ID); why != task.NextEnded {
		t.Fatalf("after COUNT: %q, want %q", why, task.NextEnded)
	}

	var created int
	for _, ev := range outboxEvents(t, db) {
		if ev.Type == events.TaskCreated {
			created++
		}
	}
	if created != 3 {
		t.Errorf("%d task.created events, want 3 (the first and two occurrences)", created)
	}
}

func TestCreateNextRefusesWhatShouldNotRecur(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	due := time.Date(2027, 1, 4, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		rule string
		edit func(t *testing.T, id uuid.UUID)
		want string
	}{
		{"trashed", "FREQ=DAILY", func(t *testing.T, id uuid.UUID) {
			if _, err := s.Trash(t.Context(), "alice", id, nil); err != nil {
				t.Fatal(err)
			}
		}, task.NextGone},
		{"recurrence removed", "FREQ=DAILY", func(t *testing.T, id uuid.UUID) {
			if _, err := s.Update(t.Context(), "alice", id, func(cur task.Task) (task.Task, error) {
				cur.Recurrence = nil
				return cur, nil
			}); err != nil {
				t.Fatal(err)
			}
		}, task.NextNoRule},
		{"past UNTIL", "FREQ=DAILY;UNTIL=20270104T120000Z", func(*testing.T, uuid.UUID) {}, task.NextEnded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tk := recurring(t, s, tc.rule, "UTC", due)
			setStatus(t, s, tk.ID, task.StatusDone)
			tc.edit(t, tk.ID)
			if _, why := createNext(t, s, tk.ID); why != tc.want {
				t.Fatalf("%q, want %q", why, tc.want)
			}
		})
	}
	if _, why := createNext(t, s, uuid.Must(uuid.NewV7())); why != task.NextGone {
		t.Fatalf("unknown task: %q, want %q", why, task.NextGone)
	}
}

// Deliveries racing on two pods file one occurrence.
func TestCreateNextConcurrentDeliveries(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	tk := recurring(t, s, "FREQ=DAILY", "UTC", time.Date(2027, 1, 4, 9, 0, 0, 0, time.UTC))
	setStatus(t, s, tk.ID, task.StatusDone)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		filed int
	)
	for range 8 {
		wg.Go(func() {
			_, why, err := s.CreateNext(context.Background(), tk.ID)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if why == task.NextFiled {
				filed++
			}
		})
	}
	wg.Wait()
	if filed != 1 {
		t.Fatalf("%d occurrences filed, want 1", filed)
	}
}
