package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

// outboxEvent is an outbox row as these tests check it.
type outboxEvent struct {
	Topic     string     `db:"topic"`
	Key       string     `db:"key"`
	Type      string     `db:"type"`
	Source    string     `db:"source"`
	Subject   string     `db:"subject"`
	Data      []byte     `db:"data"`
	Published *time.Time `db:"published_at"`
}

func outboxEvents(t *testing.T, db *pg.DB) []outboxEvent {
	t.Helper()
	rows, _ := db.Primary.Query(t.Context(), `SELECT topic, key, type, source, subject, data, published_at FROM outbox ORDER BY id`)
	evs, err := pgx.CollectRows(rows, pgx.RowToStructByName[outboxEvent])
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// decoded is the part of every task payload the tests compare.
type decoded struct {
	Type          string
	Actor         string
	Changed       []string
	OldStatus     string
	NewStatus     string
	OldAssigneeID *string
	NewAssigneeID *string
	Version       int64
	Title         string
}

func decode(t *testing.T, ev outboxEvent) decoded {
	t.Helper()
	var d struct {
		Actor         string   `json:"actor"`
		Changed       []string `json:"changed"`
		OldStatus     string   `json:"old_status"`
		NewStatus     string   `json:"new_status"`
		OldAssigneeID *string  `json:"old_assignee_id"`
		NewAssigneeID *string  `json:"new_assignee_id"`
		Task          struct {
			Version int64  `json:"version"`
			Title   string `json:"title"`
		} `json:"task"`
	}
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	return decoded{ev.Type, d.Actor, d.Changed, d.OldStatus, d.NewStatus, d.OldAssigneeID, d.NewAssigneeID, d.Task.Version, d.Task.Title}
}

var errAbort = errors.New("changed my mind")

// Each write adds its events to the outbox in its transaction: the right
// types with the right data, none for a no-op or an aborted write.
func TestWritesAddEvents(t *testing.T) {
	t.Parallel()
	due := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	update := func(f func(*task.Task)) func(context.Context, *task.Store, string, uuid.UUID) error {
		return func(ctx context.Context, s *task.Store, actor string, id uuid.UUID) error {
			_, err := s.Update(ctx, actor, id, func(cur task.Task) (task.Task, error) { f(&cur); return cur, nil })
			return err
		}
	}
	tests := []struct {
		name    string
		system  bool // made by the system: no actor
		op      func(context.Context, *task.Store, string, uuid.UUID) error
		wantErr error
		want    []decoded // after the created event
	}{
		{
			name: "created only",
			op:   func(context.Context, *task.Store, string, uuid.UUID) error { return nil },
		},
		{
			name: "title",
			op:   update(func(t *task.Task) { t.Title = "Renamed" }),
			want: []decoded{{Type: events.TaskUpdated, Actor: "alice", Changed: []string{"title"}, Version: 2, Title: "Renamed"}},
		},
		{
			name: "status",
			op:   update(func(t *task.Task) { t.Status = task.StatusDone }),
			want: []decoded{
				{Type: events.TaskUpdated, Actor: "alice", Changed: []string{"status"}, Version: 2, Title: "Plan"},
				{Type: events.TaskStatusChanged, Actor: "alice", OldStatus: "todo", NewStatus: "done", Version: 2, Title: "Plan"},
			},
		},
		{
			name: "assign",
			op:   update(func(t *task.Task) { t.AssigneeID = ptr("bob") }),
			want: []decoded{
				{Type: events.TaskUpdated, Actor: "alice", Changed: []string{"assignee_id"}, Version: 2, Title: "Plan"},
				{Type: events.TaskAssigned, Actor: "alice", NewAssigneeID: ptr("bob"), Version: 2, Title: "Plan"},
			},
		},
		{
			name: "everything at once",
			op: update(func(t *task.Task) {
				t.Title, t.Description, t.Status, t.Priority = "All", "new", task.StatusBlocked, task.PriorityUrgent
				t.DueAt, t.AssigneeID, t.Labels = &due, ptr("carol"), []string{"x"}
				t.Archived = true
				t.Recurrence, t.RecurrenceTZ, t.Reminders = ptr("FREQ=DAILY"), "Europe/Berlin", []string{"-PT1H"}
			}),
			want: []decoded{
				{Type: events.TaskUpdated, Actor: "alice", Changed: events.TaskFields[1:] /* all but project */, Version: 2, Title: "All"},
				{Type: events.TaskStatusChanged, Actor: "alice", OldStatus: "todo", NewStatus: "blocked", Version: 2, Title: "All"},
				{Type: events.TaskAssigned, Actor: "alice", NewAssigneeID: ptr("carol"), Version: 2, Title: "All"},
			},
		},
		{
			name:   "by the system",
			system: true,
			op:     update(func(t *task.Task) { t.Priority = task.PriorityLow }),
			want:   []decoded{{Type: events.TaskUpdated, Actor: "", Changed: []string{"priority"}, Version: 2, Title: "Plan"}},
		},
		{
			name: "no-op update",
			op:   update(func(t *task.Task) { t.Labels = nil }), // stored empty: no change
		},
		{
			name: "aborted update",
			op: func(ctx context.Context, s *task.Store, actor string, id uuid.UUID) error {
				_, err := s.Update(ctx, actor, id, func(cur task.Task) (task.Task, error) {
					cur.Title = "never"
					return cur, errAbort
				})
				return err
			},
			wantErr: errAbort,
		},
		{
			name: "trash",
			op: func(ctx context.Context, s *task.Store, actor string, id uuid.UUID) error {
				_, err := s.Trash(ctx, actor, id, nil)
				return err
			},
			want: []decoded{{Type: events.TaskTrashed, Actor: "alice", Version: 2, Title: "Plan"}},
		},
		{
			name: "aborted trash",
			op: func(ctx context.Context, s *task.Store, actor string, id uuid.UUID) error {
				_, err := s.Trash(ctx, actor, id, func(task.Task) error { return errAbort })
				return err
			},
			wantErr: errAbort,
		},
		{
			name: "trash, restore, trash, purge",
			op: func(ctx context.Context, s *task.Store, actor string, id uuid.UUID) error {
				allow := func(task.Trashed) error { return nil }
				if _, err := s.Trash(ctx, actor, id, nil); err != nil {
					return err
				}
				if _, err := s.Restore(ctx, actor, id, allow); err != nil {
					return err
				}
				if _, err := s.Trash(ctx, actor, id, nil); err != nil {
					return err
				}
				return s.Purge(ctx, actor, id, allow)
			},
			want: []decoded{
				{Type: events.TaskTrashed, Actor: "alice", Version: 2, Title: "Plan"},
				{Type: events.TaskRestored, Actor: "alice", Version: 3, Title: "Plan"},
				{Type: events.TaskTrashed, Actor: "alice", Version: 4, Title: "Plan"},
				{Type: events.TaskPurged, Actor: "alice", Version: 4, Title: "Plan"},
			},
		},
		{
			name: "archive",
			op:   update(func(t *task.Task) { t.Archived = true }),
			want: []decoded{{Type: events.TaskUpdated, Actor: "alice", Version: 2, Title: "Plan", Changed: []string{"archived"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, db := newStore(t)
			actor := "alice"
			if tt.system {
				actor = ""
			}
			created, err := s.Create(t.Context(), "alice",
				task.Task{Title: "Plan", Status: task.StatusTodo, Priority: task.PriorityMedium, OwnerID: "alice"})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.op(t.Context(), s, actor, created.ID); !errors.Is(err, tt.wantErr) {
				t.Fatalf("op: %v, want %v", err, tt.wantErr)
			}
			evs := outboxEvents(t, db)
			want := append([]decoded{{Type: events.TaskCreated, Actor: "alice", Version: 1, Title: "Plan"}}, tt.want...)
			var got []decoded
			for _, ev := range evs {
				got = append(got, decode(t, ev))
				id := created.ID.String()
				if ev.Key != id || ev.Subject != id || ev.Source != events.SourceTasks || ev.Topic != events.DefaultTasksTopic {
					t.Errorf("%s: envelope %+v", ev.Type, ev)
				}
				if ev.Published != nil {
					t.Errorf("%s published without a publisher", ev.Type)
				}
				if err := eventstest.Validate(ev.Type, ev.Data); err != nil {
					t.Error(err)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})
	}
}

// The event is part of the write: when it cannot be stored, the write
// does not happen either.
func TestWriteFailsWithoutItsEvent(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	kept, err := s.Create(ctx, "", draft("alice", "Kept"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Primary.Exec(ctx, `ALTER TABLE outbox ADD CONSTRAINT outbox_refuses CHECK (false) NOT VALID`); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		op   func() error
	}{
		{"create", func() error { _, err := s.Create(ctx, "", draft("alice", "Lost")); return err }},
		{"update", func() error {
			_, err := s.Update(ctx, "", kept.ID, func(cur task.Task) (task.Task, error) { cur.Title = "Changed"; return cur, nil })
			return err
		}},
		{"trash", func() error { _, err := s.Trash(ctx, "", kept.ID, nil); return err }},
	}
	for _, o := range ops {
		if err := o.op(); err == nil {
			t.Errorf("%s succeeded without its event", o.name)
		}
	}
	rows, _ := db.Primary.Query(ctx, `SELECT title FROM tasks`)
	titles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"Kept"}, titles); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
}

// fakePublisher records published event types, or fails every publish.
type fakePublisher struct {
	mu    sync.Mutex
	types []string
	err   error
}

func (p *fakePublisher) Publish(_ context.Context, ev events.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.types = append(p.types, ev.Type)
	return nil
}

// With a publisher, a write publishes its events right after commit; when
// publishing fails the write still succeeds and its events wait.
func TestWritesPublishAfterCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		err           error
		wantPublished bool
	}{
		{"kafka up", nil, true},
		{"kafka down", fmt.Errorf("%w: test", events.ErrUnavailable), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			pub := &fakePublisher{err: tt.err}
			s, err := task.NewStore(db, task.WithPublisher(pub), task.WithTopic("custom.tasks"))
			if err != nil {
				t.Fatal(err)
			}
			created, err := s.Create(t.Context(), "", draft("alice", "Go"))
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if _, err := s.Update(t.Context(), "", created.ID, func(cur task.Task) (task.Task, error) {
				cur.Status = task.StatusDone
				return cur, nil
			}); err != nil {
				t.Fatalf("update: %v", err)
			}
			for _, ev := range outboxEvents(t, db) {
				if (ev.Published != nil) != tt.wantPublished || ev.Topic != "custom.tasks" {
					t.Errorf("%s: topic %s, published %t; want %t", ev.Type, ev.Topic, ev.Published != nil, tt.wantPublished)
				}
			}
			if tt.wantPublished {
				want := []string{events.TaskCreated, events.TaskUpdated, events.TaskStatusChanged}
				if diff := cmp.Diff(want, pub.types); diff != "" {
					t.Errorf("published (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// An update whose task has an event still waiting (Kafka was down for
// the create) must not send its own first: it publishes through the key's
// lock, the waiting one first. With nothing waiting it sends its own from
// memory. Either way every event ends published, in the task's order.
func TestUpdatePublishesAfterWaitingEvents(t *testing.T) {
	t.Parallel()
	down := fmt.Errorf("%w: test", events.ErrUnavailable)
	tests := []struct {
		name        string
		createFails bool
		want        []string
	}{
		{"nothing waiting", false, []string{events.TaskCreated, events.TaskUpdated}},
		{"the create's event waiting", true, []string{events.TaskCreated, events.TaskUpdated}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			pub := &fakePublisher{}
			if tt.createFails {
				pub.err = down
			}
			s, err := task.NewStore(db, task.WithPublisher(pub))
			if err != nil {
				t.Fatal(err)
			}
			created, err := s.Create(t.Context(), "", draft("alice", "Go"))
			if err != nil {
				t.Fatal(err)
			}
			pub.mu.Lock()
			pub.err = nil
			pub.mu.Unlock()
			if _, err := s.Update(t.Context(), "", created.ID, func(cur task.Task) (task.Task, error) {
				cur.Title = "Go on"
				return cur, nil
			}); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, pub.types); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			for _, ev := range outboxEvents(t, db) {
				if ev.Published == nil {
					t.Errorf("%s left unpublished", ev.Type)
				}
			}
		})
	}
}

func TestNewStoreRejectsEmptyTopic(t *testing.T) {
	t.Parallel()
	if _, err := task.NewStore(pgtest.New(t), task.WithTopic("")); err == nil {
		t.Error("empty topic accepted")
	}
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	in := task.Task{
		ID: uuid.New(), Project: "team", Title: "T", Description: "D", Status: task.StatusBlocked, Priority: task.PriorityHigh,
		DueAt: &now, OwnerID: "o", AssigneeID: ptr("a"), Subtasks: task.Subtasks{Total: 3, Done: 1}, CreatedAt: now, UpdatedAt: now, Version: 3,
	}
	got := in.Snapshot()
	want := events.TaskSnapshot{
		ID: in.ID, Project: "team", Title: "T", Description: "D", Status: "blocked", Priority: "high",
		DueAt: &now, OwnerID: "o", AssigneeID: ptr("a"), Labels: []string{}, Subtasks: &events.Subtasks{Total: 3, Done: 1},
		RecurrenceTZ: "UTC", Reminders: []string{}, Fields: map[string]json.RawMessage{},
		CreatedAt: now, UpdatedAt: now, Version: 3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Snapshot (-want +got):\n%s", diff)
	}
	// The API's JSON and the event's agree field for field.
	a, _ := json.Marshal(in)
	b, _ := json.Marshal(got)
	var ma, mb map[string]any
	_ = json.Unmarshal(a, &ma)
	_ = json.Unmarshal(b, &mb)
	ma["labels"] = []any{}
	if diff := cmp.Diff(ma, mb); diff != "" {
		t.Errorf("task JSON vs snapshot JSON (-task +snapshot):\n%s", diff)
	}
}
