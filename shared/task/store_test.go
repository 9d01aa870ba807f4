package task_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t testing.TB) (*task.Store, *pg.DB) {
	t.Helper()
	db := pgtest.New(t)
	s, err := task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func ptr[T any](v T) *T { return &v }

// draft is a valid new task owned by owner.
func draft(owner, title string) task.Task {
	return task.Task{Title: title, Status: task.StatusTodo, Priority: task.PriorityMedium, OwnerID: owner}
}

// ignoreStamps leaves out what the database sets, checked separately.
var ignoreStamps = cmpopts.IgnoreFields(task.Task{}, "CreatedAt", "UpdatedAt")

func TestNewStoreRejectsMissingDB(t *testing.T) {
	t.Parallel()
	for _, db := range []*pg.DB{nil, {}} {
		if _, err := task.NewStore(db); err == nil {
			t.Errorf("NewStore(%v) succeeded", db)
		}
	}
}

func TestCreateAndGet(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	due := time.Date(2026, 6, 30, 17, 0, 0, 123456789, time.UTC)
	chosen := uuid.Must(uuid.NewV7())
	tests := []struct {
		name string
		in   task.Task
		want task.Task // ID is checked separately when the store picks it
	}{
		{
			name: "minimal, nil labels stored empty",
			in:   draft("alice", "Minimal"),
			want: task.Task{Title: "Minimal", Status: task.StatusTodo, Priority: task.PriorityMedium, OwnerID: "alice", Labels: []string{},
				RecurrenceTZ: "UTC", Reminders: []string{}, Version: 1},
		},
		{
			name: "every field, due time at microseconds",
			in: task.Task{
				Title: "Full", Description: "All of it", Status: task.StatusBlocked, Priority: task.PriorityUrgent,
				DueAt: &due, OwnerID: "alice", AssigneeID: ptr("bob"), Labels: []string{"ops", "backend"},
				Recurrence: ptr("FREQ=MONTHLY;BYMONTHDAY=-1"), RecurrenceTZ: "America/New_York", Reminders: []string{"-P1D", "-PT15M"},
			},
			want: task.Task{
				Title: "Full", Description: "All of it", Status: task.StatusBlocked, Priority: task.PriorityUrgent,
				DueAt: ptr(due.Truncate(time.Microsecond)), OwnerID: "alice", AssigneeID: ptr("bob"),
				Labels:     []string{"ops", "backend"},
				Recurrence: ptr("FREQ=MONTHLY;BYMONTHDAY=-1"), RecurrenceTZ: "America/New_York", Reminders: []string{"-P1D", "-PT15M"},
				Version: 1,
			},
		},
		{
			name: "caller's id kept, stamps and version from the database",
			in: func() task.Task {
				d := draft("carol", "Chosen id")
				d.ID, d.Version, d.CreatedAt = chosen, 42, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
				return d
			}(),
			want: task.Task{ID: chosen, Title: "Chosen id", Status: task.StatusTodo, Priority: task.PriorityMedium, OwnerID: "carol", Labels: []string{},
				RecurrenceTZ: "UTC", Reminders: []string{}, Version: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			before := time.Now().Add(-time.Minute)
			created, err := s.Create(ctx, "", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			// A task created without a project goes to its owner's personal one.
			tt.want.Project = "~" + tt.in.OwnerID
			if tt.want.ID == uuid.Nil {
				if created.ID.Version() != 7 {
					t.Errorf("store-made id %s is not a UUIDv7", created.ID)
				}
				tt.want.ID = created.ID
			}
			if diff := cmp.Diff(tt.want, created, ignoreStamps); diff != "" {
				t.Errorf("Create (-want +got):\n%s", diff)
			}
			if created.CreatedAt.Before(before) || !created.UpdatedAt.Equal(created.CreatedAt) {
				t.Errorf("stamps created %v updated %v: want now and equal", created.CreatedAt, created.UpdatedAt)
			}
			got, err := s.Get(ctx, created.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(created, got); diff != "" {
				t.Errorf("Get after Create (-created +got):\n%s", diff)
			}
		})
	}
}

func TestCreateRejectsWhatTheTableForbids(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	tests := []struct {
		name   string
		change func(*task.Task)
	}{
		{"empty title", func(t *task.Task) { t.Title = "" }},
		{"long title", func(t *task.Task) { t.Title = strings.Repeat("x", 201) }},
		{"long description", func(t *task.Task) { t.Description = strings.Repeat("x", 10001) }},
		{"unknown status", func(t *task.Task) { t.Status = "someday" }},
		{"unknown priority", func(t *task.Task) { t.Priority = "meh" }},
		{"too many labels", func(t *task.Task) { t.Labels = strings.Split(strings.Repeat("l,", 20)+"l", ",") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := draft("alice", "ok")
			tt.change(&in)
			if got, err := s.Create(t.Context(), "", in); err == nil {
				t.Errorf("Create succeeded: %+v", got)
			}
		})
	}
}

// The table's status check and task.Statuses must agree: List covers "any
// status" with one branch per entry of task.Statuses.
func TestStatusesMatchTable(t *testing.T) {
	t.Parallel()
	_, db := newStore(t)
	const q = `
SELECT pg_get_constraintdef(oid)
FROM pg_constraint
WHERE conname = 'tasks_status_valid'`
	var def string
	if err := db.Primary.QueryRow(t.Context(), q).Scan(&def); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, st := range task.Statuses {
		want = append(want, "'"+string(st)+"'::text")
	}
	wantDef := "CHECK ((status = ANY (ARRAY[" + strings.Join(want, ", ") + "])))"
	if def != wantDef {
		t.Errorf("constraint is\n%s\nwant\n%s", def, wantDef)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	missing := uuid.Must(uuid.NewV7())
	tests := []struct {
		name string
		op   func(context.Context, *testing.T) error
	}{
		{"get", func(ctx context.Context, t *testing.T) error { _, err := s.Get(ctx, missing); return err }},
		{"update", func(ctx context.Context, t *testing.T) error {
			_, err := s.Update(ctx, "", missing, func(cur task.Task) (task.Task, error) {
				t.Error("change called for a missing task")
				return cur, nil
			})
			return err
		}},
		{"trash", func(ctx context.Context, t *testing.T) error {
			_, err := s.Trash(ctx, "", missing, func(task.Task) error {
				t.Error("check called for a missing task")
				return nil
			})
			return err
		}},
		{"restore", func(ctx context.Context, t *testing.T) error {
			_, err := s.Restore(ctx, "", missing, func(task.Trashed) error {
				t.Error("check called for a missing task")
				return nil
			})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.op(t.Context(), t); !errors.Is(err, task.ErrNotFound) && !errors.Is(err, task.ErrNotTrashed) {
				t.Errorf("err = %v, want ErrNotFound (ErrNotTrashed from the trash)", err)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	due := time.Date(2026, 7, 1, 9, 0, 0, 500000000, time.UTC)
	errDenied := errors.New("denied")
	seed := func(t *testing.T) task.Task {
		in := draft("alice", "Original")
		in.DueAt, in.AssigneeID, in.Labels = &due, ptr("bob"), []string{"a"}
		created, err := s.Create(t.Context(), "", in)
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	tests := []struct {
		name    string
		change  func(cur task.Task) (task.Task, error)
		wantErr error
		bumped  bool
		check   func(t *testing.T, got task.Task)
	}{
		{
			name:   "same task is no write",
			change: func(cur task.Task) (task.Task, error) { return cur, nil },
		},
		{
			name: "equal values in new memory is no write",
			change: func(cur task.Task) (task.Task, error) {
				d := due.Add(999 * time.Nanosecond) // below the stored precision
				cur.DueAt, cur.AssigneeID, cur.Labels = &d, ptr("bob"), []string{"a"}
				return cur, nil
			},
		},
		{
			name: "immutable fields are not written",
			change: func(cur task.Task) (task.Task, error) {
				cur.OwnerID, cur.Version, cur.CreatedAt = "mallory", 99, time.Time{}
				return cur, nil
			},
		},
		{
			name: "title change bumps version",
			change: func(cur task.Task) (task.Task, error) {
				cur.Title = "Renamed"
				return cur, nil
			},
			bumped: true,
			check: func(t *testing.T, got task.Task) {
				if got.Title != "Renamed" {
					t.Errorf("title %q", got.Title)
				}
			},
		},
		{
			name: "every mutable field",
			change: func(cur task.Task) (task.Task, error) {
				cur.Description, cur.Status, cur.Priority = "now with text", task.StatusDone, task.PriorityLow
				cur.DueAt, cur.AssigneeID, cur.Labels = nil, nil, nil
				return cur, nil
			},
			bumped: true,
			check: func(t *testing.T, got task.Task) {
				want := task.Task{Project: "~alice", Title: "Original", Description: "now with text", Status: task.StatusDone,
					Priority: task.PriorityLow, OwnerID: "alice", Labels: []string{}, RecurrenceTZ: "UTC", Reminders: []string{}}
				if diff := cmp.Diff(want, got, ignoreStamps, cmpopts.IgnoreFields(task.Task{}, "ID", "Version")); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "callback error aborts",
			change: func(cur task.Task) (task.Task, error) {
				cur.Title = "Should not stick"
				return cur, errDenied
			},
			wantErr: errDenied,
		},
		{
			name: "version mismatch from the callback",
			change: func(cur task.Task) (task.Task, error) {
				return task.Task{}, task.ErrVersionMismatch
			},
			wantErr: task.ErrVersionMismatch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			orig := seed(t)
			got, err := s.Update(ctx, "", orig.ID, func(cur task.Task) (task.Task, error) {
				if diff := cmp.Diff(orig, cur); diff != "" {
					t.Errorf("callback saw (-stored +cur):\n%s", diff)
				}
				return tt.change(cur)
			})
			stored, gerr := s.Get(ctx, orig.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			if tt.wantErr != nil {
				if err != tt.wantErr {
					t.Errorf("err = %v, want %v as is", err, tt.wantErr)
				}
				if diff := cmp.Diff(orig, stored); diff != "" {
					t.Errorf("row changed by an aborted update (-orig +stored):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stored, got); diff != "" {
				t.Errorf("Update's result differs from the row (-stored +got):\n%s", diff)
			}
			if !tt.bumped {
				if diff := cmp.Diff(orig, got); diff != "" {
					t.Errorf("no-op update changed the row (-orig +got):\n%s", diff)
				}
				return
			}
			if got.Version != orig.Version+1 || got.UpdatedAt.Before(orig.UpdatedAt) || !got.CreatedAt.Equal(orig.CreatedAt) ||
				got.ID != orig.ID || got.OwnerID != orig.OwnerID {
				t.Errorf("after update: version %d updated %v created %v; before: version %d updated %v created %v",
					got.Version, got.UpdatedAt, got.CreatedAt, orig.Version, orig.UpdatedAt, orig.CreatedAt)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}

// Concurrent updates queue on the row lock: each sees the previous one's
// result, so none is lost.
func TestUpdateSerializes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	created, err := s.Create(ctx, "", draft("alice", "Counter"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := s.Update(ctx, "", created.ID, func(cur task.Task) (task.Task, error) {
				cur.Labels = append(cur.Labels, fmt.Sprintf("l%d", i))
				return cur, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Get(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Labels) != n || got.Version != n+1 {
		t.Errorf("labels %v version %d: want %d labels and version %d", got.Labels, got.Version, n, n+1)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	errDenied := errors.New("denied")
	tests := []struct {
		name    string
		check   func(task.Task) error
		wantErr error
	}{
		{"allowed", func(cur task.Task) error { return nil }, nil},
		{"no check", nil, nil},
		{"denied", func(cur task.Task) error { return errDenied }, errDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			created, err := s.Create(ctx, "", draft("alice", "Doomed"))
			if err != nil {
				t.Fatal(err)
			}
			check := tt.check
			if check != nil {
				check = func(cur task.Task) error {
					if diff := cmp.Diff(created, cur); diff != "" {
						t.Errorf("check saw (-stored +cur):\n%s", diff)
					}
					return tt.check(cur)
				}
			}
			_, err = s.Trash(ctx, "", created.ID, check)
			if err != tt.wantErr {
				t.Errorf("err = %v, want %v as is", err, tt.wantErr)
			}
			_, err = s.Get(ctx, created.ID)
			if gone := errors.Is(err, task.ErrNotFound); gone != (tt.wantErr == nil) {
				t.Errorf("after Trash, Get err = %v", err)
			}
			if _, err := s.Trash(ctx, "", created.ID, nil); tt.wantErr == nil && !errors.Is(err, task.ErrNotFound) {
				t.Errorf("second Trash err = %v, want ErrNotFound", err)
			}
		})
	}
}

// own is the scope of a task-member with no project role but its
// personal project, where the tasks it creates go; "" is nil, every task.
func own(subject string) *task.Scope {
	if subject == "" {
		return nil
	}
	return &task.Scope{Projects: []string{"~" + subject}, Assignee: subject}
}
