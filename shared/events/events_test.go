package events_test

import (
	"encoding/json"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
)

func ptr[T any](v T) *T { return &v }

// Every type has a schema, and every schema is a type's or the shared
// snapshot's: a new type cannot ship without its contract.
func TestSchemasCoverTypes(t *testing.T) {
	t.Parallel()
	names, err := fs.Glob(events.Schemas, "schemas/*.json")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"schemas/task.v1.json", "schemas/comment.v1.json", "schemas/command.v1.json"}
	for _, typ := range append(slices.Clone(events.Types), events.CommandTypes...) {
		want = append(want, events.SchemaFile(typ))
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("schema files %v, want %v", names, want)
	}
	for _, n := range names {
		b, _ := events.Schemas.ReadFile(n)
		var doc struct {
			ID string `json:"$id"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if doc.ID != events.SchemaBase+path.Base(n) {
			t.Errorf("%s: $id %q, want %q", n, doc.ID, events.SchemaBase+path.Base(n))
		}
	}
}

// What the code emits validates against the schema of its type, across
// the shapes a payload takes (nil and set pointers, empty and full lists).
func TestEmittedDataValidates(t *testing.T) {
	t.Parallel()
	full := eventstest.Snapshot()
	comment := events.CommentSnapshot{ID: uuid.New(), TaskID: full.ID, Author: "bob", Body: "Looks **good**\n- one", CreatedAt: time.Now(), UpdatedAt: time.Now(), Version: 1}
	edited := comment
	edited.EditedAt, edited.Version = ptr(time.Now()), 2
	full.Description = strings.Repeat("d", 10000)
	full.DueAt = ptr(time.Date(2026, 4, 1, 17, 0, 0, 0, time.FixedZone("CET", 3600)))
	full.AssigneeID = ptr("bob")
	full.Labels = []string{"ops", "backend"}
	full.Version = 7
	full.Subtasks = &events.Subtasks{Total: 3, Done: 1}
	full.Recurrence, full.RecurrenceTZ, full.Reminders = ptr("FREQ=WEEKLY;BYDAY=MO"), "Europe/Berlin", []string{"-P1D", "-PT1H"}
	full.SeriesID = ptr(uuid.Must(uuid.NewV7()))
	report := uuid.Must(uuid.NewV7())
	tests := []struct {
		name string
		data events.Data
	}{
		{"created, minimal", events.TaskCreatedData{Actor: "alice", Task: eventstest.Snapshot()}},
		{"created, every field", events.TaskCreatedData{Actor: "alice", Task: full}},
		{"created by the system", events.TaskCreatedData{Actor: "", Task: eventstest.Snapshot()}},
		{"updated, one field", events.TaskUpdatedData{Actor: "bob", Changed: []string{"title"}, Task: full}},
		{"updated, every field", events.TaskUpdatedData{Actor: "bob", Changed: events.TaskFields, Task: full}},
		{"status changed", events.TaskStatusChangedData{Actor: "bob", OldStatus: "todo", NewStatus: "in_progress", Task: full}},
		{"assigned", events.TaskAssignedData{Actor: "alice", OldAssigneeID: nil, NewAssigneeID: ptr("bob"), Task: full}},
		{"unassigned", events.TaskAssignedData{Actor: "alice", OldAssigneeID: ptr("bob"), NewAssigneeID: nil, Task: eventstest.Snapshot()}},
		{"deleted", events.TaskDeletedData{Actor: "alice", Task: full}},
		{"comment created", events.CommentCreatedData{Actor: "bob", Comment: comment, Task: full}},
		{"comment edited", events.CommentUpdatedData{Actor: "bob", Comment: edited, Task: eventstest.Snapshot()}},
		{"comment deleted", events.CommentDeletedData{Actor: "alice", Comment: comment, Task: full}},
		{"updated subtasks", events.TaskUpdatedData{Actor: "", Changed: []string{"subtasks"}, Task: full}},
		{"relation added", events.RelationAddedData{Actor: "bob", TaskID: full.ID, Kind: "subtask_of", OtherID: report, Project: "web", OtherProject: "~bob", CreatedBy: "bob", CreatedAt: full.CreatedAt}},
		{"relation removed", events.RelationRemovedData{Actor: "alice", TaskID: full.ID, Kind: "blocks", OtherID: report, Project: "web", OtherProject: "web", CreatedBy: "bob", CreatedAt: full.CreatedAt}},
		{"reminder", events.TaskReminderData{Reminder: "-P1D", RemindAt: full.DueAt.AddDate(0, 0, -1), Task: full}},
		{"overdue", events.TaskOverdueData{DueAt: *full.DueAt, Task: full}},
		{"report requested", events.ReportRequestedData{ReportID: report, Kind: "tasks-by-status", RequestedBy: "bob"}},
		{"report succeeded", events.ReportCompletedData{ReportID: report, Kind: "tasks-by-status", RequestedBy: "bob", Status: "succeeded", Rows: 12}},
		{"report failed", events.ReportCompletedData{ReportID: report, Kind: "tasks-by-status", RequestedBy: "bob", Status: "failed", Error: "timeout"}},
		{"digest, empty", events.DigestWeeklyData{DigestID: report, Subject: "bob", Week: "2026-W50", TimeZone: "UTC", From: full.CreatedAt, To: full.CreatedAt}},
		{"digest, full", events.DigestWeeklyData{DigestID: report, Subject: "bob", Week: "2026-W50", TimeZone: "Europe/Berlin", From: full.CreatedAt, To: full.CreatedAt,
			Open: 30, Overdue: 2, Completed: 5, Chart: true,
			OpenTasks: []events.DigestTask{{ID: full.ID, Title: "x", Project: "web", Status: "todo", DueAt: full.DueAt, Overdue: true}, {ID: full.ID, Title: "y", Project: "~bob", Status: "blocked"}},
			Projects:  []events.DigestProject{{Project: "web", Count: 5, Titles: []string{"a", "b", "c"}}}}},
		{"webhook disabled", events.WebhookDisabledData{WebhookID: report, Owner: "bob", Project: &full.Project, URL: "https://example.com/hook", Failures: 50, LastError: "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := events.New("topic", events.SourceTasks, uuid.Must(uuid.NewV7()), tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tt.data.EventType() {
				t.Errorf("type %q, want %q", ev.Type, tt.data.EventType())
			}
			if err := eventstest.Validate(ev.Type, ev.Data); err != nil {
				t.Error(err)
			}
		})
	}
}

// The schemas are strict enough to catch the mistakes that matter to a
// consumer: missing, unknown, mistyped and out-of-range fields.
func TestSchemasRejectMistakes(t *testing.T) {
	t.Parallel()
	valid, err := json.Marshal(events.TaskStatusChangedData{Actor: "a", OldStatus: "todo", NewStatus: "done", Task: eventstest.Snapshot()})
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	task := func(m map[string]any) map[string]any { return m["task"].(map[string]any) }
	tests := []struct {
		name string
		typ  string
		data []byte
	}{
		{"missing old_status", events.TaskStatusChanged, edit(func(m map[string]any) { delete(m, "old_status") })},
		{"unknown status", events.TaskStatusChanged, edit(func(m map[string]any) { m["new_status"] = "someday" })},
		{"unknown field", events.TaskStatusChanged, edit(func(m map[string]any) { m["extra"] = 1 })},
		{"task id not a uuid", events.TaskStatusChanged, edit(func(m map[string]any) { task(m)["id"] = "42" })},
		{"labels null", events.TaskStatusChanged, edit(func(m map[string]any) { task(m)["labels"] = nil })},
		{"due_at not a time", events.TaskStatusChanged, edit(func(m map[string]any) { task(m)["due_at"] = "tomorrow" })},
		{"version zero", events.TaskStatusChanged, edit(func(m map[string]any) { task(m)["version"] = 0 })},
		{"empty title", events.TaskStatusChanged, edit(func(m map[string]any) { task(m)["title"] = "" })},
		{"no field changed", events.TaskUpdated, edit(func(m map[string]any) {
			delete(m, "old_status")
			delete(m, "new_status")
			m["changed"] = []string{}
		})},
		{"changed names an unknown field", events.TaskUpdated, edit(func(m map[string]any) {
			delete(m, "old_status")
			delete(m, "new_status")
			m["changed"] = []string{"owner_id"}
		})},
		{"report rows negative", events.ReportCompleted, []byte(`{"report_id":"` + uuid.NewString() + `","kind":"k","requested_by":"b","status":"succeeded","rows":-1}`)},
		{"not JSON", events.TaskCreated, []byte(`{`)},
		{"unknown type", "dev.taskfn.nothing.v1", []byte(`{}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := eventstest.Validate(tt.typ, tt.data); err == nil {
				t.Errorf("validated: %s", tt.data)
			}
		})
	}
}

func TestNewSetsEnvelope(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7())
	before := time.Now().Add(-time.Second)
	tests := []struct {
		name   string
		build  func() (events.Event, error)
		source string
	}{
		{"task", func() (events.Event, error) {
			return events.NewTaskEvent("t.tasks", id, events.TaskDeletedData{Task: eventstest.Snapshot()})
		}, events.SourceTasks},
		{"report", func() (events.Event, error) {
			return events.NewReportEvent("t.tasks", id, events.ReportRequestedData{ReportID: id, Kind: "k"})
		}, events.SourceReports},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := tt.build()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := tt.build()
			if a.ID == b.ID || a.ID.Version() != 7 {
				t.Errorf("ids %s, %s: want distinct UUIDv7s", a.ID, b.ID)
			}
			if a.Key != id.String() || a.Subject != id.String() || a.Topic != "t.tasks" || a.Source != tt.source {
				t.Errorf("envelope %+v", a)
			}
			if a.Time.Before(before) || a.Time.Location() != time.UTC || a.Time.Nanosecond()%1000 != 0 {
				t.Errorf("time %v: want now, UTC, whole microseconds", a.Time)
			}
		})
	}
}

func TestCloudEvent(t *testing.T) {
	t.Parallel()
	task := eventstest.Snapshot()
	ev, err := events.NewTaskEvent("t", task.ID, events.TaskCreatedData{Actor: "alice", Task: task})
	if err != nil {
		t.Fatal(err)
	}
	ce, err := ev.CloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{
		"specversion": ce.SpecVersion(), "id": ce.ID(), "source": ce.Source(), "type": ce.Type(),
		"subject": ce.Subject(), "time": ce.Time(), "datacontenttype": ce.DataContentType(),
		"partitionkey": ce.Extensions()[events.ExtPartitionKey],
	}
	want := map[string]any{
		"specversion": "1.0", "id": ev.ID.String(), "source": events.SourceTasks, "type": events.TaskCreated,
		"subject": task.ID.String(), "time": ev.Time, "datacontenttype": "application/json",
		"partitionkey": task.ID.String(),
	}
	for k, w := range want {
		if g := got[k]; g != w {
			if gt, ok := g.(time.Time); !ok || !gt.Equal(w.(time.Time)) {
				t.Errorf("%s = %v, want %v", k, g, w)
			}
		}
	}
	if ce.DataBase64 {
		t.Error("data marked base64: structured consumers would see data_base64")
	}
	var back events.TaskCreatedData
	if err := ce.DataAs(&back); err != nil || back.Task.ID != task.ID {
		t.Errorf("DataAs: %v, %+v", err, back)
	}
}
