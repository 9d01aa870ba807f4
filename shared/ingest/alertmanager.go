package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/task"
)

// AlertmanagerRoute is POST /events/alertmanager: Prometheus
// Alertmanager's webhook (webhook_config, version 4), each alert turned
// into a command (docs/producers.md) and run as the token's subject.
func AlertmanagerRoute(g *auth.Gate, x *Executor) (httpx.Route, error) {
	if g == nil || x == nil {
		return httpx.Route{}, fmt.Errorf("ingest: %s alertmanager: %w", Name, function.ErrMissing)
	}
	a := &API{x: x}
	return g.Route(Name+"-alertmanager", http.MethodPost, "/events/alertmanager", a.alertmanager), nil
}

// POST /events/alertmanager: 200 with each alert's command's answer, as
// for a batch; 503 when a retry may help (Alertmanager retries 5xx, and
// a retry redoes nothing).
func (a *API) alertmanager(w http.ResponseWriter, r *http.Request) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return httpx.UnsupportedMediaType("application/json")
	}
	body, err := httpx.ReadLimited(w, r, httpx.MaxBody)
	if err != nil {
		return err
	}
	// A notification holds up to MaxBatch alerts with their labels.
	if err := httpx.LimitJSONTokens(body, MaxBatch*httpx.MaxJSONTokens); err != nil {
		return err
	}
	evs, err := AlertmanagerEvents(body)
	if err != nil {
		return err
	}
	cmds, err := ParseAll(evs, true)
	if err != nil {
		return err
	}
	results, err := a.x.RunAll(r.Context(), auth.Caller(r), cmds)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, BatchReply{Results: results})
	return nil
}

// Notification is Alertmanager's webhook payload (version 4); members
// Alertmanager may add later are ignored.
type Notification struct {
	Version      string            `json:"version"`
	Status       string            `json:"status"`
	Receiver     string            `json:"receiver"`
	CommonLabels map[string]string `json:"commonLabels"`
	ExternalURL  string            `json:"externalURL"`
	Alerts       []Alert           `json:"alerts"`
}

// Alert is one alert of a Notification.
type Alert struct {
	Status       string            `json:"status"` // firing or resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// AlertmanagerSource is the source of the commands the adapter makes.
const AlertmanagerSource = "alertmanager"

// ProjectLabel is the alert label that names the project of its task
// (else the producer's personal project).
const ProjectLabel = "taskfn_project"

// AlertmanagerEvents maps a webhook payload to commands, one per alert,
// in its order (400 for a payload that is not one):
//   - firing: dev.taskfn.command.task.create.v1 with externalref
//     alertmanager:<fingerprint> — the first creates the task, later
//     ones (the alert firing again after it resolved) update and reopen
//     it; title "[alertname] summary", the description, the generator
//     URL, priority from the severity label, label "alert", project from
//     the taskfn_project label;
//   - resolved: dev.taskfn.command.task.close.v1 (done) by the same ref.
//
// The id is fingerprint, status and start: Alertmanager repeats a
// notification (repeat_interval, a group's other alerts changing) with
// the same id, which then changes nothing.
func AlertmanagerEvents(body []byte) ([]event.Event, error) {
	var n Notification
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, httpx.BadRequest("the body is not an Alertmanager notification: " + err.Error())
	}
	if n.Version != "4" {
		return nil, httpx.BadRequest(`the body is not an Alertmanager notification of version "4"`)
	}
	switch {
	case len(n.Alerts) == 0:
		return nil, httpx.BadRequest("the notification holds no alert")
	case len(n.Alerts) > MaxBatch:
		return nil, httpx.BadRequest(fmt.Sprintf("a notification holds at most %d alerts (set max_alerts)", MaxBatch))
	}
	out := make([]event.Event, 0, len(n.Alerts))
	for i, a := range n.Alerts {
		if a.Fingerprint == "" || len(a.Fingerprint) > 64 || !utf8.ValidString(a.Fingerprint) {
			return nil, httpx.BadRequest(fmt.Sprintf("alert %d: a fingerprint of 1 to 64 bytes is required", i))
		}
		ev := event.New()
		ev.SetID(a.Fingerprint + ":" + a.Status + ":" + a.StartsAt.UTC().Format(time.RFC3339Nano))
		ev.SetSource(AlertmanagerSource)
		ev.SetExtension(events.ExtExternalRef, "alertmanager:"+a.Fingerprint)
		var data map[string]any
		switch a.Status {
		case "firing":
			ev.SetType(events.CommandTaskCreate)
			data = firing(a, n.CommonLabels)
		case "resolved":
			ev.SetType(events.CommandTaskClose)
			data = map[string]any{"status": string(task.StatusDone)}
		default:
			return nil, httpx.BadRequest(fmt.Sprintf(`alert %d: status must be "firing" or "resolved"`, i))
		}
		if err := ev.SetData(event.ApplicationJSON, data); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// firing is the data of the create command of a firing alert.
func firing(a Alert, common map[string]string) map[string]any {
	title := "[" + a.Labels["alertname"] + "] " + firstOf(a.Annotations["summary"], a.Labels["alertname"])
	var desc strings.Builder
	desc.WriteString(a.Annotations["description"])
	if a.GeneratorURL != "" {
		desc.WriteString("\n\nSource: " + a.GeneratorURL)
	}
	keys := make([]string, 0, len(a.Labels))
	for k := range a.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	desc.WriteString("\n\nLabels:")
	for _, k := range keys {
		desc.WriteString("\n- " + k + "=" + a.Labels[k])
	}
	data := map[string]any{
		"title":       clip(title, task.MaxTitle),
		"description": clip(strings.TrimSpace(desc.String()), task.MaxDescription),
		"priority":    string(severityPriority(a.Labels["severity"])),
		"status":      string(task.StatusTodo), // reopens a resolved one firing again
		"labels":      []string{"alert"},
	}
	if p := firstOf(a.Labels[ProjectLabel], common[ProjectLabel]); p != "" {
		data["project"] = p
	}
	return data
}

// severityPriority maps the usual severity labels to priorities.
func severityPriority(s string) task.Priority {
	switch strings.ToLower(s) {
	case "critical", "page", "error":
		return task.PriorityUrgent
	case "warning":
		return task.PriorityHigh
	case "info", "none":
		return task.PriorityLow
	}
	return task.PriorityMedium
}

// firstOf is the first non-empty of a, b.
func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// clip cuts s to at most n characters, at a rune boundary, keeping its
// text valid for the task's checks.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(bytes.TrimSpace([]byte(string(r[:n-1])))) + "…"
}
