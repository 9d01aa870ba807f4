// Package notify turns task and report events into notifications: an
// in-app inbox (GET /notifications, POST /notifications/{id}/read) and, when
// SMTP is configured, an email. Who is told what is decided by Decide, a
// pure function of the event; Store is the one place with SQL for
// notifications, their emails and processed events; Sink is the CloudEvent
// sink; API serves the inbox.
package notify

import (
	"encoding/json"
	"fmt"
	"mime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// Kind says what a notification is about.
type Kind string

const (
	KindStatusChanged   Kind = "task.status_changed"
	KindAssigned        Kind = "task.assigned"
	KindReportCompleted Kind = "report.completed"
	KindCommented       Kind = "comment.created"
	KindMentioned       Kind = "comment.mentioned"
	KindReminder        Kind = "task.reminder"
	KindOverdue         Kind = "task.overdue"
	KindWebhookDisabled Kind = "webhook.disabled"
	KindDigest          Kind = "digest.weekly"
)

// poison marks an event that can never be processed: retrying it cannot
// help, so the sink answers 4xx and it goes to the dead-letter sink.
func poison(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errs.ErrPoison, fmt.Sprintf(format, args...))
}

// Notice is one notification to one recipient, before it is stored.
type Notice struct {
	Recipient string
	Kind      Kind
	Actor     string // "" when the system acted
	TaskID    *uuid.UUID
	ReportID  *uuid.UUID
	TaskTitle string
	// Chart names the digest whose chart the email carries inline.
	Chart *uuid.UUID
	// Detail is what changed, as the API shows it under "detail".
	Detail map[string]any
}

// Decide returns the notices an event causes, given its type, data content
// type and data. Task status changes and assignments (including a task
// created with an assignee) tell the owner and the assignee (for an
// assignment also the previous assignee), never the actor; a completed
// report tells its requester. Other event types cause
// none. An event of a handled type whose data cannot be understood gives an
// error wrapping errs.ErrPoison.
func Decide(eventType, contentType string, data []byte) ([]Notice, error) {
	var decide func(data []byte) ([]Notice, error)
	switch eventType {
	case events.TaskStatusChanged:
		decide = statusChanged
	case events.TaskAssigned:
		decide = assigned
	case events.TaskCreated:
		decide = createdAssigned
	case events.ReportCompleted:
		decide = reportCompleted
	case events.CommentCreated:
		decide = commented
	case events.CommentUpdated:
		decide = mentionedOnEdit
	case events.TaskReminder:
		decide = reminder
	case events.TaskOverdue:
		decide = overdue
	case events.WebhookDisabled:
		decide = webhookDisabled
	case events.DigestWeekly:
		decide = digestWeekly
	default:
		return nil, nil
	}
	if err := checkData(eventType, contentType, data); err != nil {
		return nil, err
	}
	notices, err := decide(data)
	if err != nil {
		return nil, err
	}
	for _, n := range notices {
		if err := storable(n); err != nil {
			return nil, err
		}
	}
	return notices, nil
}

// storable refuses a notice holding text PostgreSQL cannot store: JSON
// data may carry \u0000, which text and jsonb refuse (22021, 22P05), so
// the store failed with a 500 and the event was redelivered to fail
// again. Recipient, actor, title and detail are all the notice's texts;
// the summary is made of them.
func storable(n Notice) error {
	texts := []string{n.Recipient, n.Actor, n.TaskTitle}
	for _, v := range n.Detail {
		switch v := v.(type) {
		case string:
			texts = append(texts, v)
		case *string:
			if v != nil {
				texts = append(texts, *v)
			}
		}
	}
	for _, s := range texts {
		if !pg.TextOK(s) {
			return poison("the data holds a text with NUL, which cannot be stored")
		}
	}
	return nil
}

// checkData refuses data that no decoder could read: a content type that
// is not JSON (none means JSON) or no data at all.
func checkData(eventType, contentType string, data []byte) error {
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return poison("data content type %q is not JSON", contentType)
		}
	}
	if len(data) == 0 {
		return poison("%s without data", eventType)
	}
	return nil
}

// excerptRunes bounds the part of a comment a notification quotes.
const excerptRunes = 200

// commented tells the task's owner and assignee of a new comment.
func commented(data []byte) ([]Notice, error) {
	var d events.CommentCreatedData
	detail, err := commentDetail(data, (*events.CommentData)(&d))
	if err != nil {
		return nil, err
	}
	// The people mentioned hear of it as a mention, once; the owner and
	// the assignee otherwise as a comment.
	out := taskNotices(KindMentioned, d.Actor, d.Task, detail, d.Mentioned...)
	for _, n := range taskNotices(KindCommented, d.Actor, d.Task, detail, d.Task.OwnerID, deref(d.Task.AssigneeID)) {
		if !slices.Contains(d.Mentioned, n.Recipient) {
			out = append(out, n)
		}
	}
	return out, nil
}

// mentionedOnEdit tells the people an edit newly mentions; an edit tells
// nobody else.
func mentionedOnEdit(data []byte) ([]Notice, error) {
	var d events.CommentUpdatedData
	detail, err := commentDetail(data, (*events.CommentData)(&d))
	if err != nil {
		return nil, err
	}
	return taskNotices(KindMentioned, d.Actor, d.Task, detail, d.Mentioned...), nil
}

// commentDetail decodes a comment event's data into d and returns the
// detail its notices show: the comment's id and an excerpt.
func commentDetail(data []byte, d *events.CommentData) (map[string]any, error) {
	if err := decodeTask(data, d, &d.Task); err != nil {
		return nil, err
	}
	if d.Comment.ID == uuid.Nil || d.Comment.TaskID != d.Task.ID {
		return nil, poison("the comment needs an id and its task's id")
	}
	if len(d.Mentioned) > maxMentioned {
		return nil, poison("%d mentioned, at most %d", len(d.Mentioned), maxMentioned)
	}
	excerpt := []rune(d.Comment.Body)
	if len(excerpt) > excerptRunes {
		excerpt = append(excerpt[:excerptRunes-1], '…')
	}
	return map[string]any{"comment_id": d.Comment.ID.String(), "excerpt": string(excerpt)}, nil
}

// maxMentioned is what the event schema allows (comment.MaxMentions).
const maxMentioned = 20

// statusChanged tells the owner and the assignee that the status moved.
func statusChanged(data []byte) ([]Notice, error) {
	var d events.TaskStatusChangedData
	if err := decodeTask(data, &d, &d.Task); err != nil {
		return nil, err
	}
	if !task.Status(d.OldStatus).Valid() || !task.Status(d.NewStatus).Valid() {
		return nil, poison("status change %q → %q names an unknown status", d.OldStatus, d.NewStatus)
	}
	if d.OldStatus == d.NewStatus {
		return nil, nil
	}
	detail := map[string]any{"old_status": d.OldStatus, "new_status": d.NewStatus}
	return taskNotices(KindStatusChanged, d.Actor, d.Task, detail, d.Task.OwnerID, deref(d.Task.AssigneeID)), nil
}

// assigned tells the owner, the new assignee and the previous one that the
// assignee changed.
func assigned(data []byte) ([]Notice, error) {
	var d events.TaskAssignedData
	if err := decodeTask(data, &d, &d.Task); err != nil {
		return nil, err
	}
	old, cur := deref(d.OldAssigneeID), deref(d.NewAssigneeID)
	if old == cur {
		return nil, nil
	}
	detail := map[string]any{"old_assignee_id": d.OldAssigneeID, "new_assignee_id": d.NewAssigneeID}
	return taskNotices(KindAssigned, d.Actor, d.Task, detail, d.Task.OwnerID, cur, old), nil
}

// createdAssigned tells the assignee of a task created with one that it is
// theirs: the store emits only task.created then, so this is where they
// hear of it.
func createdAssigned(data []byte) ([]Notice, error) {
	var d events.TaskCreatedData
	if err := decodeTask(data, &d, &d.Task); err != nil {
		return nil, err
	}
	if d.Task.AssigneeID == nil {
		return nil, nil
	}
	detail := map[string]any{"old_assignee_id": (*string)(nil), "new_assignee_id": d.Task.AssigneeID}
	return taskNotices(KindAssigned, d.Actor, d.Task, detail, d.Task.OwnerID, *d.Task.AssigneeID), nil
}

// reminder tells the owner and the assignee that the task is due soon.
func reminder(data []byte) ([]Notice, error) {
	var d events.TaskReminderData
	if err := decodeTask(data, &d, &d.Task); err != nil {
		return nil, err
	}
	if d.Task.DueAt == nil || d.Reminder == "" {
		return nil, poison("a reminder needs the task's due_at and the reminder")
	}
	detail := map[string]any{"reminder": d.Reminder, "remind_at": d.RemindAt, "due_at": *d.Task.DueAt, "due_local": localTime(*d.Task.DueAt, d.Task.RecurrenceTZ)}
	return taskNotices(KindReminder, d.Actor, d.Task, detail, d.Task.OwnerID, deref(d.Task.AssigneeID)), nil
}

// overdue tells the owner and the assignee that the due date passed.
func overdue(data []byte) ([]Notice, error) {
	var d events.TaskOverdueData
	if err := decodeTask(data, &d, &d.Task); err != nil {
		return nil, err
	}
	detail := map[string]any{"due_at": d.DueAt, "due_local": localTime(d.DueAt, d.Task.RecurrenceTZ)}
	return taskNotices(KindOverdue, d.Actor, d.Task, detail, d.Task.OwnerID, deref(d.Task.AssigneeID)), nil
}

// localTime is t as people read it, in the task's zone (UTC when the
// zone is absent or unknown here).
func localTime(t time.Time, tz string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	return t.In(loc).Format("Mon 2 Jan 2006 15:04 MST")
}

// reportCompleted tells the requester that their report succeeded or failed.
func reportCompleted(data []byte) ([]Notice, error) {
	var d events.ReportCompletedData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	// A requester longer than a subject is none, and would not fit the
	// index on notifications' recipient (a 500 before).
	if d.ReportID == uuid.Nil || d.RequestedBy == "" || len(d.RequestedBy) > task.MaxSubject || (d.Status != "succeeded" && d.Status != "failed") {
		return nil, poison("report.completed needs report_id, requested_by (at most %d bytes) and a status of succeeded or failed", task.MaxSubject)
	}
	id := d.ReportID
	detail := map[string]any{"report_kind": d.Kind, "status": d.Status, "rows": d.Rows}
	if d.Error != "" {
		detail["error"] = d.Error
	}
	return []Notice{{Recipient: d.RequestedBy, Kind: KindReportCompleted, ReportID: &id, Detail: detail}}, nil
}

// webhookDisabled tells a webhook's owner that it was turned off after
// failing too often, and why.
func webhookDisabled(data []byte) ([]Notice, error) {
	var d events.WebhookDisabledData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if d.WebhookID == uuid.Nil || d.Owner == "" || len(d.Owner) > task.MaxSubject {
		return nil, poison("webhook.disabled needs webhook_id and owner (at most %d bytes)", task.MaxSubject)
	}
	detail := map[string]any{"webhook_id": d.WebhookID.String(), "url": d.URL, "project": d.Project,
		"failures": d.Failures, "last_status_code": d.LastStatusCode, "last_error": d.LastError}
	return []Notice{{Recipient: d.Owner, Kind: KindWebhookDisabled, Detail: detail}}, nil
}

// digestWeekly gives a subject its weekly digest (docs/digest.md).
func digestWeekly(data []byte) ([]Notice, error) {
	var d events.DigestWeeklyData
	if err := decode(data, &d); err != nil {
		return nil, err
	}
	if d.DigestID == uuid.Nil || d.Subject == "" || len(d.Subject) > task.MaxSubject || d.Week == "" ||
		len(d.OpenTasks) > maxDigestTasks || len(d.Projects) > maxDigestProjects {
		return nil, poison("digest.weekly needs digest_id, subject (at most %d bytes) and week, at most %d open tasks and %d projects",
			task.MaxSubject, maxDigestTasks, maxDigestProjects)
	}
	texts := []string{d.Week, d.TimeZone}
	for _, t := range d.OpenTasks {
		texts = append(texts, t.Title, t.Project, t.Status)
	}
	for _, p := range d.Projects {
		texts = append(texts, p.Project)
		texts = append(texts, p.Titles...)
	}
	for _, s := range texts {
		if !pg.TextOK(s) {
			return nil, poison("the data holds a text with NUL, which cannot be stored")
		}
	}
	id := d.DigestID
	detail := map[string]any{"digest_id": id.String(), "week": d.Week, "time_zone": d.TimeZone, "from": d.From, "to": d.To,
		"open": d.Open, "overdue": d.Overdue, "open_tasks": nonNil(d.OpenTasks), "completed": d.Completed,
		"completed_by_project": nonNil(d.Projects)}
	n := Notice{Recipient: d.Subject, Kind: KindDigest, Detail: detail}
	if d.Chart {
		n.Chart = &id
	}
	return []Notice{n}, nil
}

// What a digest event may list (the schema's bounds).
const (
	maxDigestTasks    = 20
	maxDigestProjects = 10
)

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// decodeTask decodes the data of a task event into d and checks its task
// snapshot, snap, which points into d.
func decodeTask(data []byte, d any, snap *events.TaskSnapshot) error {
	if err := decode(data, d); err != nil {
		return err
	}
	return checkTask(*snap)
}

func decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return poison("data is not the expected JSON: %v", err)
	}
	return nil
}

func checkTask(t events.TaskSnapshot) error {
	if t.ID == uuid.Nil || t.OwnerID == "" {
		return poison("the task snapshot needs an id and an owner_id")
	}
	return nil
}

// taskNotices gives one notice to each distinct candidate other than the
// actor, in the order given.
func taskNotices(kind Kind, actor string, t events.TaskSnapshot, detail map[string]any, candidates ...string) []Notice {
	if t.Project != "" { // absent in events written before projects
		detail["project"] = t.Project
	}
	var out []Notice
	var seen []string
	for _, c := range candidates {
		if c == "" || c == actor || len(c) > task.MaxSubject || slices.Contains(seen, c) {
			continue
		}
		seen = append(seen, c)
		id := t.ID
		out = append(out, Notice{Recipient: c, Kind: kind, Actor: actor, TaskID: &id, TaskTitle: t.Title, Detail: detail})
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Summary is the notice as one line of text for the recipient, naming
// people by name(subject).
func (n Notice) Summary(name func(subject string) string) string {
	actor := "Someone"
	if n.Actor != "" {
		actor = name(n.Actor)
	}
	title := "“" + n.TaskTitle + "”"
	str := func(k string) string {
		s, _ := n.Detail[k].(string)
		if p, ok := n.Detail[k].(*string); ok && p != nil {
			s = *p
		}
		return s
	}
	switch n.Kind {
	case KindStatusChanged:
		return fmt.Sprintf("%s moved %s from %s to %s", actor, title, statusText(str("old_status")), statusText(str("new_status")))
	case KindAssigned:
		old, cur := str("old_assignee_id"), str("new_assignee_id")
		switch {
		case cur == n.Recipient:
			return fmt.Sprintf("%s assigned %s to you", actor, title)
		case old == n.Recipient && cur == "":
			return fmt.Sprintf("%s unassigned you from %s", actor, title)
		case old == n.Recipient:
			return fmt.Sprintf("%s reassigned %s from you to %s", actor, title, name(cur))
		case cur == "":
			return fmt.Sprintf("%s unassigned %s from %s", actor, name(old), title)
		default:
			return fmt.Sprintf("%s assigned %s to %s", actor, title, name(cur))
		}
	case KindCommented:
		return fmt.Sprintf("%s commented on %s: %s", actor, title, str("excerpt"))
	case KindMentioned:
		return fmt.Sprintf("%s mentioned you on %s: %s", actor, title, str("excerpt"))
	case KindReminder:
		return fmt.Sprintf("Reminder: %s is due %s", title, str("due_local"))
	case KindOverdue:
		return fmt.Sprintf("%s is overdue: it was due %s", title, str("due_local"))
	case KindWebhookDisabled:
		return fmt.Sprintf("Your webhook to %s was disabled after %d failed deliveries in a row: %s", str("url"), n.Detail["failures"], str("last_error"))
	case KindDigest:
		return fmt.Sprintf("Your weekly digest (%s): %d open tasks, %d overdue; %d completed last week in your projects",
			str("week"), n.Detail["open"], n.Detail["overdue"], n.Detail["completed"])
	case KindReportCompleted:
		kind := strings.ReplaceAll(str("report_kind"), "_", " ")
		if str("status") == "succeeded" {
			return fmt.Sprintf("Your %s report is ready", kind)
		}
		return fmt.Sprintf("Your %s report failed", kind)
	}
	return string(n.Kind)
}

func statusText(s string) string { return strings.ReplaceAll(s, "_", " ") }
