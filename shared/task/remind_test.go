package task_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// sent is what reminder events the outbox holds for id, in order: the
// reminder, or "overdue".
func sent(t *testing.T, db *pg.DB, id uuid.UUID) []string {
	t.Helper()
	var out []string
	for _, ev := range outboxEvents(t, db) {
		if ev.Key != id.String() {
			continue
		}
		switch ev.Type {
		case events.TaskReminder:
			var d events.TaskReminderData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			out = append(out, d.Reminder)
		case events.TaskOverdue:
			out = append(out, "overdue")
		}
	}
	return out
}

func fire(t *testing.T, s *task.Store, at time.Time) task.Fired {
	t.Helper()
	f, err := s.FireReminders(t.Context(), at, 100)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func withReminders(t *testing.T, s *task.Store, due time.Time, reminders ...string) task.Task {
	t.Helper()
	d := draft("alice", "Reminded")
	d.DueAt, d.Reminders, d.AssigneeID = &due, reminders, ptr("bob")
	created, err := s.Create(t.Context(), "alice", d)
	if err != nil {
		t.Fatal(err)
	}
	return created
}

func TestFireRemindersSendsEachOnce(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	now := time.Now().UTC()
	due := now.Add(2 * time.Hour)
	tk := withReminders(t, s, due, "-PT1H", "-PT90M")

	steps := []struct {
		at   time.Duration // after now
		want []string      // everything sent so far
	}{
		{0, nil},
		{29 * time.Minute, nil},
		{31 * time.Minute, []string{"-PT90M"}},
		{32 * time.Minute, []string{"-PT90M"}},
		{61 * time.Minute, []string{"-PT90M", "-PT1H"}},
		{119 * time.Minute, []string{"-PT90M", "-PT1H"}},
		{121 * time.Minute, []string{"-PT90M", "-PT1H", "overdue"}},
		{24 * time.Hour, []string{"-PT90M", "-PT1H", "overdue"}},
	}
	for _, st := range steps {
		fire(t, s, now.Add(st.at))
		if got := sent(t, db, tk.ID); !slices.Equal(got, st.want) {
			t.Fatalf("after a tick at +%s: sent %v, want %v", st.at, got, st.want)
		}
	}

	// The due date moves: its reminders come again, from the new date.
	if _, err := s.Update(t.Context(), "alice", tk.ID, func(cur task.Task) (task.Task, error) {
		later := due.Add(24 * time.Hour)
		cur.DueAt = &later
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	fire(t, s, now.Add(24*time.Hour+31*time.Minute))
	if got := sent(t, db, tk.ID); !slices.Equal(got, []string{"-PT90M", "-PT1H", "overdue", "-PT90M"}) {
		t.Fatalf("after the due date moved: %v", got)
	}
}

func TestFireRemindersLateTickSendsTheLatestOnly(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	now := time.Now().UTC()
	tk := withReminders(t, s, now.Add(3*time.Hour), "-PT2H", "-PT1H")
	// Down for two and a half hours: the 2 h reminder is stale, the 1 h
	// one is the news.
	fire(t, s, now.Add(150*time.Minute))
	fire(t, s, now.Add(151*time.Minute))
	if got := sent(t, db, tk.ID); !slices.Equal(got, []string{"-PT1H"}) {
		t.Fatalf("sent %v, want only -PT1H", got)
	}
}

func TestFireRemindersSkipsClosedArchivedAndTrashed(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	now := time.Now().UTC()
	due := now.Add(time.Hour)
	done := withReminders(t, s, due, "-PT30M")
	setStatus(t, s, done.ID, task.StatusDone)
	archived := withReminders(t, s, due, "-PT30M")
	if _, err := s.Update(t.Context(), "alice", archived.ID, func(cur task.Task) (task.Task, error) {
		cur.Archived = true
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	trashed := withReminders(t, s, due, "-PT30M")
	if _, err := s.Trash(t.Context(), "alice", trashed.ID, nil); err != nil {
		t.Fatal(err)
	}
	noDue := draft("alice", "No due date")
	if _, err := s.Create(t.Context(), "alice", noDue); err != nil {
		t.Fatal(err)
	}
	if f := fire(t, s, now.Add(2*time.Hour)); f.Tasks != 0 {
		t.Fatalf("fired %+v for done, archived, trashed and undated tasks", f)
	}
	for _, id := range []uuid.UUID{done.ID, archived.ID, trashed.ID} {
		if got := sent(t, db, id); len(got) != 0 {
			t.Errorf("task %s: sent %v", id, got)
		}
	}
	// Reopened in time, the done one is reminded of what is still ahead.
	setStatus(t, s, done.ID, task.StatusTodo)
	fire(t, s, now.Add(31*time.Minute))
	if got := sent(t, db, done.ID); !slices.Equal(got, []string{"-PT30M"}) {
		t.Fatalf("reopened: sent %v", got)
	}
}

// Two ticks at once (overlapping, or two pods) send every reminder once.
func TestFireRemindersConcurrentTicks(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	now := time.Now().UTC()
	const n = 60
	for range n {
		withReminders(t, s, now.Add(time.Hour), "-PT30M")
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 4 {
		wg.Go(func() {
			for {
				f, err := s.FireReminders(context.Background(), now.Add(31*time.Minute), 7)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += f.Reminders
				mu.Unlock()
				if f.Tasks == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	var events int
	for _, ev := range outboxEvents(t, db) {
		if ev.Type == "dev.taskfn.task.reminder.v1" {
			events++
		}
	}
	if total != n || events != n {
		t.Fatalf("ticks counted %d reminders and wrote %d events, want %d each", total, events, n)
	}
}
