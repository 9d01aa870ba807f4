package notify_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// taskEvents returns the events put in the outbox for entity id (a task
// or a report), oldest first, as relay-outbox would publish them.
func taskEvents(t testing.TB, db *pg.DB, id uuid.UUID) []event.Event {
	t.Helper()
	evs, _ := taskEventsAfter(t, db, id, 0)
	return evs
}

// taskEventsAfter returns task id's events after outbox row after, and
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

// A status change made through the task store reaches the owner's inbox
// and mailbox once, however often its events are delivered: the store's
// outbox rows are sent to the sink as KafkaSource would send them, every
// one of them three times.
func TestStatusChangeReachesInboxAndMailbox(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	inbox := env.inbox()
	remember(t, env.db, "alice", "alice@taskfn.test")
	tasks, err := task.NewStore(env.db)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := tasks.Create(context.Background(), "alice", task.Task{Title: "Release 2.0", Status: task.StatusTodo, Priority: task.PriorityHigh, OwnerID: "alice", AssigneeID: ptr("bob")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tasks.Update(context.Background(), "bob", tk.ID, func(cur task.Task) (task.Task, error) {
		cur.Status = task.StatusDone
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	evs := taskEvents(t, env.db, tk.ID)
	if len(evs) < 3 {
		t.Fatalf("%d events in the outbox, want created, updated, status_changed", len(evs))
	}
	for range 3 {
		for _, ev := range evs {
			if status, body := post(t, env.url, ev); status != http.StatusNoContent {
				t.Fatalf("%s: %d %s", ev.Type(), status, body)
			}
		}
	}

	status, body := inbox.call(t, "GET", "/notifications", inbox.issuer.Token(t, "alice", auth.RoleMember))
	p := decodePage(t, body)
	if status != 200 || len(p.Items) != 1 || p.Items[0].Summary != "bob moved “Release 2.0” from todo to done" || *p.Items[0].TaskID != tk.ID {
		t.Fatalf("alice's inbox: %d %s", status, body)
	}
	msgs := env.smtp.Wait(t, 1, 5*time.Second)
	if len(msgs) != 1 || msgs[0].To[0] != "alice@taskfn.test" || !strings.Contains(msgs[0].Subject, "Release 2.0") {
		t.Errorf("emails: %+v", msgs)
	}
	// bob, the assignee, was told of the assignment when the task was
	// created, not of his own status change.
	_, body = inbox.call(t, "GET", "/notifications", inbox.issuer.Token(t, "bob", auth.RoleMember))
	if p := decodePage(t, body); len(p.Items) != 1 || p.Items[0].Summary != "alice assigned “Release 2.0” to you" {
		t.Errorf("bob's inbox: %s", body)
	}
}

// A report's requester is notified when it is done: the worker's
// report.completed, from the outbox, through the sink, into the inbox.
func TestReportCompletionReachesRequester(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	remember(t, env.db, "carol", "carol@taskfn.test")
	ctx := context.Background()
	reports, err := report.NewStore(env.db)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := task.NewStore(env.db)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := report.NewWorker(reports, tasks, report.WorkerConfig{ChunkBytes: 1 << 20, Lease: time.Minute, BuildTimeout: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reports.Create(ctx, report.Request{Kind: report.KindTasksExport, Format: report.FormatCSV}, "carol", "carol", report.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Build(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	evs := taskEvents(t, env.db, r.ID) // keyed by the report id
	var delivered int
	for _, ev := range evs {
		if ev.Type() == events.ReportCompleted {
			for range 2 {
				if status, body := post(t, env.url, ev); status != http.StatusNoContent {
					t.Fatalf("%d %s", status, body)
				}
			}
			delivered++
		}
	}
	if delivered != 1 {
		t.Fatalf("%d report.completed events", delivered)
	}
	page, err := env.store.List(ctx, notify.ListQuery{Recipient: "carol", Limit: 10})
	if err != nil || len(page.Items) != 1 || *page.Items[0].ReportID != r.ID {
		t.Fatalf("carol's inbox: %+v, %v", page, err)
	}
	if msgs := env.smtp.To("carol@taskfn.test"); len(msgs) != 1 {
		t.Errorf("%d emails to carol", len(msgs))
	}
}
