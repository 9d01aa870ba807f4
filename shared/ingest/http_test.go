package ingest_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/task"
)

// A create command in either single-event mode answers as POST /tasks
// does, and a redelivery of it answers the same again, changing nothing.
func TestCreateInEachModeOnce(t *testing.T) {
	t.Parallel()
	for _, m := range []mode{binary, structured} {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tok := e.token(alerts, auth.RoleMember)
			ev := command(t, events.CommandTaskCreate, "", map[string]any{"title": "Disk full on db-1", "priority": "urgent", "labels": []string{"ops"}})
			first := e.post(m, ev, tok)
			if first.status != http.StatusCreated {
				t.Fatalf("first: %d %s", first.status, first.body)
			}
			tk := decodeTask(t, first.body)
			if first.header.Get("Location") != "/tasks/"+tk.ID.String() || tk.OwnerID != alerts || tk.Title != "Disk full on db-1" || tk.Priority != task.PriorityUrgent {
				t.Fatalf("first: %v %s", first.header, first.body)
			}
			for range 2 {
				again := e.post(m, ev, tok)
				if again.status != first.status || string(again.body) != string(first.body) ||
					again.header.Get("Location") != first.header.Get("Location") || again.header.Get(ingest.ReplayedHeader) != "true" {
					t.Fatalf("repeat: %d %v %s, want the first answer", again.status, again.header, again.body)
				}
			}
			if n := e.count("tasks"); n != 1 {
				t.Fatalf("%d tasks, want 1", n)
			}
			if got := e.task(tk.ID); got.Version != 1 {
				t.Errorf("version %d after repeats, want 1", got.Version)
			}
		})
	}
}

// A batch runs its commands in order, each answered; sent again, every
// answer is the first one and nothing changes.
func TestBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.token(alerts, auth.RoleMember)
	ref := "alertmanager:" + uuid.NewString()[:8]
	evs := []event.Event{
		command(t, events.CommandTaskCreate, ref, map[string]any{"title": "CPU high"}),
		command(t, events.CommandTaskUpdate, ref, map[string]any{"patch": map[string]any{"status": "in_progress"}, "expected_version": 1}),
		command(t, events.CommandTaskComment, ref, map[string]any{"body": "Scaled the pool to **4**"}),
		command(t, events.CommandTaskClose, ref, map[string]any{}),
	}
	var first ingest.BatchReply
	r := e.postBatch(evs, tok)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	r.decode(t, &first)
	statuses := []int{}
	for _, res := range first.Results {
		statuses = append(statuses, res.Status)
	}
	if diff := cmp.Diff([]int{201, 200, 201, 200}, statuses); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s\n%s", diff, r.body)
	}
	tk := decodeTask(t, first.Results[3].Body)
	if tk.Status != task.StatusDone || tk.Version != 3 {
		t.Fatalf("closed task: %+v", tk)
	}
	var again ingest.BatchReply
	e.postBatch(evs, tok).decode(t, &again)
	for i := range again.Results {
		if !again.Results[i].Replayed || string(again.Results[i].Body) != string(first.Results[i].Body) {
			t.Errorf("result %d again: %+v", i, again.Results[i])
		}
	}
	if n, c := e.count("tasks"), e.count("comments"); n != 1 || c != 1 {
		t.Errorf("%d tasks, %d comments; want 1 and 1", n, c)
	}
	if got := e.task(tk.ID); got.Version != 3 {
		t.Errorf("version %d, want 3", got.Version)
	}
}

// A command that can never succeed is refused with a problem naming what
// is wrong, and nothing is written; in a batch, one bad command refuses
// the whole batch before any runs.
func TestBadCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.token(alerts, auth.RoleMember)
	good := command(t, events.CommandTaskCreate, "", map[string]any{"title": "ok"})
	textData := command(t, events.CommandTaskCreate, "", nil)
	if err := textData.SetData("text/plain", []byte("title")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		send   func() reply
		status int
		fields []string // of a 422
	}{
		{"unknown type", func() reply {
			return e.post(binary, command(t, "dev.taskfn.command.task.explode.v1", "", map[string]any{"title": "x"}), tok)
		}, 422, []string{"type"}},
		{"data not JSON", func() reply { return e.post(binary, textData, tok) }, 415, nil},
		{"no data", func() reply { return e.post(structured, command(t, events.CommandTaskCreate, "", nil), tok) }, 422, []string{"data"}},
		{"not a CloudEvent", func() reply { return e.postRaw("/events", "application/json", `{"title":"x"}`, nil, tok) }, 400, nil},
		{"structured, not JSON", func() reply { return e.postRaw("/events", "application/cloudevents+json", `{"specversion":`, nil, tok) }, 400, nil},
		{"unknown data field", func() reply {
			return e.post(binary, command(t, events.CommandTaskCreate, "", map[string]any{"title": "x", "colour": "red"}), tok)
		}, 400, nil},
		{"invalid values", func() reply {
			return e.post(binary, command(t, events.CommandTaskCreate, "", map[string]any{"title": "", "priority": "asap"}), tok)
		}, 422, []string{"data.title", "data.priority"}},
		{"update without a target", func() reply {
			return e.post(binary, command(t, events.CommandTaskUpdate, "", map[string]any{"patch": map[string]any{"title": "y"}}), tok)
		}, 422, []string{"data.task_id"}},
		{"update with an invalid patch", func() reply {
			return e.post(binary, command(t, events.CommandTaskUpdate, "", map[string]any{"task_id": uuid.NewString(), "patch": map[string]any{"status": "gone"}}), tok)
		}, 422, []string{"data.patch.status"}},
		{"close to an open status", func() reply {
			return e.post(binary, command(t, events.CommandTaskClose, "", map[string]any{"task_id": uuid.NewString(), "status": "todo"}), tok)
		}, 422, []string{"data.status"}},
		{"batch with one bad command", func() reply {
			return e.postBatch([]event.Event{good, command(t, events.CommandTaskCreate, "", map[string]any{"title": ""})}, tok)
		}, 422, []string{"[1].data.title"}},
		{"batch with data not JSON", func() reply { return e.postBatch([]event.Event{good, textData}, tok) }, 415, nil},
		{"empty batch", func() reply { return e.postRaw("/events", "application/cloudevents-batch+json", `[]`, nil, tok) }, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send()
			if r.status != tt.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tt.status)
			}
			p := r.problem(t)
			var fields []string
			for _, f := range p.Errors {
				fields = append(fields, f.Field)
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	if n := e.count("tasks") + e.count("command_receipts") + e.count("command_refs"); n != 0 {
		t.Errorf("%d rows written by refused commands", n)
	}
}

// A producer acts with its own rights and no more: without a taskfn role
// the gate refuses it; into a project it only views, 403; a task it may
// not see, 404 — and nothing is written.
func TestProducerWithoutRights(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mine := e.post(binary, command(t, events.CommandTaskCreate, "", map[string]any{"title": "Manager's task"}), e.token(manager, auth.RoleManager))
	if mine.status != http.StatusCreated {
		t.Fatalf("setup: %d %s", mine.status, mine.body)
	}
	theirs := decodeTask(t, mine.body)
	viewer := e.iss.Sign(t, withGroups(e.iss.Claims(alerts, auth.RoleMember), "/projects/ops/viewer"))
	tests := []struct {
		name   string
		ev     event.Event
		token  string
		status int
	}{
		{"no taskfn role", command(t, events.CommandTaskCreate, "", map[string]any{"title": "x"}), e.token(nobody), http.StatusForbidden},
		{"a project it only views", command(t, events.CommandTaskCreate, "", map[string]any{"title": "x", "project": "ops"}), viewer, http.StatusForbidden},
		{"a task it may not see", command(t, events.CommandTaskUpdate, "", map[string]any{"task_id": theirs.ID, "patch": map[string]any{"title": "mine now"}}), e.token(alerts, auth.RoleMember), http.StatusNotFound},
		{"comment on a task it may not see", command(t, events.CommandTaskComment, "", map[string]any{"task_id": theirs.ID, "body": "hi"}), e.token(alerts, auth.RoleMember), http.StatusNotFound},
		{"no token", command(t, events.CommandTaskCreate, "", map[string]any{"title": "x"}), "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(structured, tt.ev, tt.token)
			if r.status != tt.status {
				t.Fatalf("%d %s, want %d", r.status, r.body, tt.status)
			}
		})
	}
	if n, c, rc := e.count("tasks"), e.count("comments"), e.count("command_receipts"); n != 1 || c != 0 || rc != 1 {
		t.Errorf("%d tasks, %d comments, %d receipts; want only the manager's task and its receipt", n, c, rc)
	}
	if got := e.task(theirs.ID); got.Version != 1 || got.Title != "Manager's task" {
		t.Errorf("the manager's task changed: %+v", got)
	}
}

// withGroups adds Keycloak groups to claims.
func withGroups(claims map[string]any, groups ...string) map[string]any {
	claims["groups"] = groups
	return claims
}

// Commands that arrive out of order have a defined result, never a
// half-done one: a stale expected_version is a 412; a close before the
// create of its ref is a 404, and the create then creates; an old
// command delivered again after newer ones answers as it first did.
func TestReordering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.token(alerts, auth.RoleMember)
	ref := "job:" + uuid.NewString()[:8]
	closeFirst := command(t, events.CommandTaskClose, ref, map[string]any{})
	if r := e.post(binary, closeFirst, tok); r.status != http.StatusNotFound {
		t.Fatalf("close before create: %d %s", r.status, r.body)
	}
	create := command(t, events.CommandTaskCreate, ref, map[string]any{"title": "Nightly backup failed"})
	r := e.post(binary, create, tok)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	tk := decodeTask(t, r.body)
	v1 := command(t, events.CommandTaskUpdate, ref, map[string]any{"expected_version": 1, "patch": map[string]any{"priority": "high"}})
	first := e.post(binary, v1, tok)
	if first.status != http.StatusOK {
		t.Fatalf("update at v1: %d %s", first.status, first.body)
	}
	stale := command(t, events.CommandTaskUpdate, ref, map[string]any{"expected_version": 1, "patch": map[string]any{"priority": "low"}})
	if r := e.post(binary, stale, tok); r.status != http.StatusPreconditionFailed {
		t.Fatalf("stale update: %d %s", r.status, r.body)
	}
	// The close that came first, delivered again now, closes it.
	if r := e.post(binary, closeFirst, tok); r.status != http.StatusOK {
		t.Fatalf("close redelivered: %d %s", r.status, r.body)
	}
	// The v1 update, redelivered late, answers as it did and changes nothing.
	if r := e.post(binary, v1, tok); r.status != http.StatusOK || string(r.body) != string(first.body) {
		t.Fatalf("late repeat: %d %s", r.status, r.body)
	}
	got := e.task(tk.ID)
	if got.Status != task.StatusDone || got.Priority != task.PriorityHigh || got.Version != 3 {
		t.Errorf("task: %s %s v%d, want done, high, v3", got.Status, got.Priority, got.Version)
	}
}

// Deliveries of one command at once, and first creates of one ref at
// once, make one task: the receipt's and the ref's keys decide, and the
// losers answer as the winner did (the command) or update (the ref).
func TestConcurrentDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.token(alerts, auth.RoleMember)
	const n = 8
	same := command(t, events.CommandTaskCreate, "", map[string]any{"title": "Once"})
	ref := "alertmanager:" + uuid.NewString()[:8]
	replies := make([]reply, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i] = e.post(binary, same, tok) })
		wg.Go(func() {
			replies[n+i] = e.post(binary, command(t, events.CommandTaskCreate, ref, map[string]any{"title": fmt.Sprintf("Alert %d", i)}), tok)
		})
	}
	wg.Wait()
	created := 0
	for i, r := range replies {
		switch {
		case i < n && (r.status != http.StatusCreated || string(r.body) != string(replies[0].body)):
			t.Errorf("delivery %d: %d %s, want the first answer", i, r.status, r.body)
		case i >= n && r.status == http.StatusCreated:
			created++
		case i >= n && r.status != http.StatusOK:
			t.Errorf("ref create %d: %d %s", i-n, r.status, r.body)
		}
	}
	if created != 1 {
		t.Errorf("%d creates of the ref answered 201, want 1", created)
	}
	if got := e.count("tasks"); got != 2 {
		t.Errorf("%d tasks, want 2", got)
	}
}
