package task_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// A limit stops both the count and the rows at the limit, oldest first,
// with the filters' placeholders numbered before its own.
func TestExportLimit(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	var alices []uuid.UUID // oldest first
	for i, owner := range []string{"alice", "bob", "alice", "alice", "bob", "alice"} {
		tk, err := s.Create(ctx, "", draft(owner, "t"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		if owner == "alice" {
			alices = append(alices, tk.ID)
		}
	}
	tests := []struct {
		name      string
		q         task.ExportQuery
		limit     int64
		wantTotal int64
		want      int // the first want of alice's tasks
	}{
		{"no limit", task.ExportQuery{Only: own("alice")}, 0, 4, 4},
		{"under the selection", task.ExportQuery{Only: own("alice")}, 3, 3, 3},
		{"exactly the selection", task.ExportQuery{Only: own("alice")}, 4, 4, 4},
		{"beyond the selection", task.ExportQuery{Only: own("alice")}, 10, 4, 4},
		{"after several filters", task.ExportQuery{Only: own("alice"), OwnerID: "alice", Statuses: []task.Status{task.StatusTodo}}, 2, 2, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var total int64 = -1
			var got []uuid.UUID
			opts := task.ExportOptions{Limit: tc.limit, Total: func(n int64) error { total = n; return nil }}
			err := s.Export(ctx, tc.q, opts, func(tk *task.Task) error { got = append(got, tk.ID); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if total != tc.wantTotal {
				t.Errorf("total %d, want %d", total, tc.wantTotal)
			}
			if d := cmp.Diff(alices[:tc.want], got); d != "" {
				t.Errorf("rows (-want +got):\n%s", d)
			}
		})
	}
}

// Summarize with StatusPerDay counts each day's tasks by the status they
// had at its end, from their history: changes within the period, before
// it and after it, a change at midnight, a task whose history began after
// it was created, tasks created within and after the period, and only
// the tasks the scope selects.
func TestSummarizeStatusPerDay(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	at := func(v string) time.Time {
		d, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	type change struct {
		at       string
		old, new string // "" old: the created line
	}
	add := func(owner, status, created string, changes ...change) {
		t.Helper()
		id := uuid.Must(uuid.NewV7())
		const q = `
INSERT INTO tasks (id, title, status, priority, owner_id, labels, created_at, updated_at, project)
VALUES ($1, 't', $2, 'medium', $3, '{}', $4, $4, NULL)`
		if _, err := db.Primary.Exec(ctx, q, id, status, owner, at(created)); err != nil {
			t.Fatal(err)
		}
		for _, c := range changes {
			old := `"` + c.old + `"`
			kind := "updated"
			if c.old == "" {
				old, kind = "null", "created"
			}
			const q = `
INSERT INTO task_activity (id, task_id, at, actor, kind, changes)
VALUES ($1, $2, $3, 'x', $4, $5)`
			body := `[{"field":"title","old":null,"new":"t"},{"field":"status","old":` + old + `,"new":"` + c.new + `"}]`
			if _, err := db.Primary.Exec(ctx, q, uuid.Must(uuid.NewV7()), id, at(c.at), kind, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("alice", "done", "2025-12-30T00:00:00Z", // A
		change{"2026-01-02T10:00:00Z", "todo", "in_progress"}, change{"2026-01-04T00:00:00Z", "in_progress", "done"})
	add("alice", "todo", "2026-01-03T12:00:00Z")      // B, no history at all
	add("alice", "cancelled", "2026-01-01T08:00:00Z", // C
		change{"2026-01-01T08:00:00Z", "", "todo"}, change{"2026-01-01T09:00:00Z", "todo", "blocked"},
		change{"2026-01-01T10:00:00Z", "blocked", "todo"}, change{"2026-01-06T00:00:00Z", "todo", "cancelled"})
	add("alice", "todo", "2026-01-10T00:00:00Z")                                                   // D, after the period
	add("alice", "done", "2025-12-01T00:00:00Z", change{"2025-12-15T00:00:00Z", "todo", "done"})   // E
	add("alice", "blocked", "2026-01-02T00:00:00Z", change{"2026-01-02T00:00:00Z", "", "blocked"}) // F
	add("bob", "todo", "2025-12-01T00:00:00Z")                                                     // not alice's

	from, to := at("2026-01-01T00:00:00Z"), at("2026-01-06T00:00:00Z")
	sum, err := s.Summarize(ctx, task.ExportQuery{Only: own("alice")}, from, to, to, task.ExportOptions{StatusPerDay: true})
	if err != nil {
		t.Fatal(err)
	}
	counts := func(todo, inProgress, blocked, done, cancelled int64) map[task.Status]int64 {
		return map[task.Status]int64{task.StatusTodo: todo, task.StatusInProgress: inProgress, task.StatusBlocked: blocked,
			task.StatusDone: done, task.StatusCancelled: cancelled}
	}
	want := []map[task.Status]int64{
		counts(2, 0, 0, 1, 0), // A and C todo (C blocked only within the day), E done
		counts(1, 1, 1, 1, 0), // A in progress, F blocked from midnight
		counts(2, 1, 1, 1, 0), // B created
		counts(2, 0, 1, 2, 0), // A done at midnight
		counts(2, 0, 1, 2, 0), // C cancelled only the day after
	}
	var got []map[task.Status]int64
	for _, d := range sum.Days {
		got = append(got, d.ByStatus)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("by status per day (-want +got):\n%s", d)
	}

	// Without the option the days carry no statuses.
	sum, err = s.Summarize(ctx, task.ExportQuery{Only: own("alice")}, from, to, to, task.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Days[0].ByStatus != nil {
		t.Errorf("statuses without asking: %v", sum.Days[0].ByStatus)
	}
}
