package ingest_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/task"
)

// notification is an Alertmanager webhook payload (version 4) as
// Alertmanager sends it, for one alert.
func notification(t *testing.T, status, fingerprint string, startsAt time.Time, labels map[string]string) string {
	t.Helper()
	alert := map[string]any{
		"status": status, "labels": labels,
		"annotations": map[string]string{"summary": "Disk almost full on db-1", "description": "Only 3% left on /var/lib/postgresql."},
		"startsAt":    startsAt.Format(time.RFC3339Nano), "endsAt": "0001-01-01T00:00:00Z",
		"generatorURL": "http://prometheus.example/graph?g0.expr=disk", "fingerprint": fingerprint,
	}
	if status == "resolved" {
		alert["endsAt"] = startsAt.Add(time.Hour).Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": `{}:{alertname="DiskFull"}`, "truncatedAlerts": 0, "status": status, "receiver": "taskfn",
		"groupLabels": map[string]string{"alertname": "DiskFull"}, "commonLabels": labels, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager.example:9093", "alerts": []any{alert},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The Alertmanager mapping, end to end over HTTP: a firing alert makes a
// task (priority from severity), its repeats change nothing, resolved
// closes it, and the alert firing again reopens the same task.
func TestAlertmanager(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.token(alerts, auth.RoleMember)
	fp := uuid.NewString()[:16]
	start := time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	labels := map[string]string{"alertname": "DiskFull", "severity": "critical", "instance": "db-1"}
	post := func(body string) ingest.Result {
		t.Helper()
		r := e.postRaw("/events/alertmanager", "application/json", body, nil, tok)
		if r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var br ingest.BatchReply
		r.decode(t, &br)
		if len(br.Results) != 1 {
			t.Fatalf("%s", r.body)
		}
		return br.Results[0]
	}
	firing := post(notification(t, "firing", fp, start, labels))
	if firing.Status != http.StatusCreated {
		t.Fatalf("firing: %+v", firing)
	}
	tk := decodeTask(t, firing.Body)
	if tk.Title != "[DiskFull] Disk almost full on db-1" || tk.Priority != task.PriorityUrgent || tk.OwnerID != alerts || tk.Labels[0] != "alert" {
		t.Fatalf("task: %+v", tk)
	}
	if repeat := post(notification(t, "firing", fp, start, labels)); !repeat.Replayed || repeat.Status != http.StatusCreated {
		t.Fatalf("repeat: %+v", repeat)
	}
	if resolved := post(notification(t, "resolved", fp, start, labels)); resolved.Status != http.StatusOK || decodeTask(t, resolved.Body).Status != task.StatusDone {
		t.Fatalf("resolved: %+v", resolved)
	}
	again := post(notification(t, "firing", fp, start.Add(3*time.Hour), labels))
	if got := decodeTask(t, again.Body); again.Status != http.StatusOK || got.ID != tk.ID || got.Status != task.StatusTodo {
		t.Fatalf("firing again: %d %s", again.Status, again.Body)
	}
	if n := e.count("tasks"); n != 1 {
		t.Errorf("%d tasks, want 1", n)
	}
	// A resolved alert that never fired here closes nothing.
	if r := post(notification(t, "resolved", "never-fired", start, labels)); r.Status != http.StatusNotFound {
		t.Errorf("resolved, never fired: %+v", r)
	}
	if r := e.postRaw("/events/alertmanager", "application/json", `{"version":"3","alerts":[]}`, nil, tok); r.status != http.StatusBadRequest {
		t.Errorf("not version 4: %d %s", r.status, r.body)
	}
}

// What the adapter makes is what a producer could send: every command
// validates against its published schema.
func TestAlertmanagerCommandsMatchSchemas(t *testing.T) {
	t.Parallel()
	for _, status := range []string{"firing", "resolved"} {
		evs, err := ingest.AlertmanagerEvents([]byte(notification(t, status, "abc123", time.Now(), map[string]string{"alertname": "X", "taskfn_project": "ops"})))
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if err := eventstest.Validate(ev.Type(), ev.Data()); err != nil {
				t.Errorf("%s: %v", status, err)
			}
			if _, err := ingest.Parse(ev); err != nil {
				t.Errorf("%s: %v", status, err)
			}
		}
	}
}
