// Package events names taskfn's CloudEvents and their data payloads. Types
// are versioned: a breaking change of a payload is a new type, never an edit.
package events

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event types.
const (
	TaskCreated       = "dev.taskfn.task.created.v1"
	TaskUpdated       = "dev.taskfn.task.updated.v1"
	TaskStatusChanged = "dev.taskfn.task.status_changed.v1"
	TaskAssigned      = "dev.taskfn.task.assigned.v1"
	TaskDeleted       = "dev.taskfn.task.deleted.v1" // before the trash; no longer written
	TaskTrashed       = "dev.taskfn.task.trashed.v1"
	TaskRestored      = "dev.taskfn.task.restored.v1"
	TaskPurged        = "dev.taskfn.task.purged.v1"
	TaskReminder      = "dev.taskfn.task.reminder.v1"
	TaskOverdue       = "dev.taskfn.task.overdue.v1"
	CommentCreated    = "dev.taskfn.comment.created.v1"
	CommentUpdated    = "dev.taskfn.comment.updated.v1"
	CommentDeleted    = "dev.taskfn.comment.deleted.v1"
	RelationAdded     = "dev.taskfn.relation.added.v1"
	RelationRemoved   = "dev.taskfn.relation.removed.v1"
	ReportRequested   = "dev.taskfn.report.requested.v1"
	ReportCompleted   = "dev.taskfn.report.completed.v1"
	WebhookDisabled   = "dev.taskfn.webhook.disabled.v1"
	CommandRejected   = "dev.taskfn.command.rejected.v1" // ingest-events refused a command from Kafka
	DigestWeekly      = "dev.taskfn.digest.weekly.v1"
)

// Types lists every event type taskfn emits.
var Types = []string{TaskCreated, TaskUpdated, TaskStatusChanged, TaskAssigned, TaskDeleted, TaskTrashed, TaskRestored, TaskPurged,
	TaskReminder, TaskOverdue,
	CommentCreated, CommentUpdated, CommentDeleted, RelationAdded, RelationRemoved, ReportRequested, ReportCompleted,
	WebhookDisabled, CommandRejected, DigestWeekly}

// Command types: what producers send ingest-events (docs/producers.md),
// each with its data schema beside the event types'.
const (
	CommandTaskCreate  = "dev.taskfn.command.task.create.v1"
	CommandTaskUpdate  = "dev.taskfn.command.task.update.v1"
	CommandTaskComment = "dev.taskfn.command.task.comment.v1"
	CommandTaskClose   = "dev.taskfn.command.task.close.v1"
)

// CommandTypes are every command type taskfn accepts.
var CommandTypes = []string{CommandTaskCreate, CommandTaskUpdate, CommandTaskComment, CommandTaskClose}

// ExtExternalRef is the CloudEvents extension by which a producer names
// "its" task (alertmanager:<fingerprint>): see docs/producers.md.
const ExtExternalRef = "externalref"

// SourceIngest is the source of the events ingest-events emits.
const SourceIngest = "/taskfn/ingest"

// PingSourceType is the type of the events a Knative PingSource sends on
// each tick: not taskfn's own, but what triggers relay-outbox.
const PingSourceType = "dev.knative.sources.ping"

// Sources: the CloudEvents "source" of each family.
const (
	SourceTasks   = "/taskfn/tasks"
	SourceReports = "/taskfn/reports"
	// SourceWebhooks: events about webhooks themselves, keyed by the
	// webhook's id, on the tasks topic (which notify reads).
	SourceWebhooks = "/taskfn/webhooks"
	// SourceDigests: weekly digests, keyed by the digest's id, on the
	// tasks topic (which notify reads).
	SourceDigests = "/taskfn/digests"
)

// Default topics (configurable): task events keyed by task id, report
// events keyed by report id, so each entity's events stay in order.
const (
	DefaultTasksTopic   = "taskfn.tasks"
	DefaultReportsTopic = "taskfn.reports"
)

// ExtPartitionKey is the CloudEvents partitioning extension: the Kafka
// record key, which the kafka_sarama binding and KafkaSource both read.
const ExtPartitionKey = "partitionkey"

// Event is one event as the outbox stores it and the publisher sends it.
// ID is the CloudEvent id: fixed when the change is made, so every re-send
// of the event is recognisably the same event.
type Event struct {
	ID      uuid.UUID
	Topic   string
	Key     string // Kafka record key and partitionkey: the entity id
	Type    string
	Source  string
	Subject string // the entity id
	Time    time.Time
	Data    json.RawMessage
}

// Data is an event payload. Each payload type names its event type, so an
// event cannot be built with the wrong payload.
type Data interface {
	EventType() string
}

// New builds the event of data about entity (a task or report id): a new
// UUIDv7 id, key and subject = entity, time now.
func New(topic, source string, entity uuid.UUID, data Data) (Event, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Event{}, fmt.Errorf("events: %w", err)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return Event{}, fmt.Errorf("events: %s data: %w", data.EventType(), err)
	}
	key := entity.String()
	return Event{
		ID:      id,
		Topic:   topic,
		Key:     key,
		Type:    data.EventType(),
		Source:  source,
		Subject: key,
		// Microseconds: what the outbox's timestamptz keeps, so an event
		// reads back from the table exactly as it was built.
		Time: time.Now().UTC().Truncate(time.Microsecond),
		Data: b,
	}, nil
}

// NewTaskEvent builds a task event on topic, keyed by the task's id.
func NewTaskEvent(topic string, taskID uuid.UUID, data Data) (Event, error) {
	return New(topic, SourceTasks, taskID, data)
}

// NewReportEvent builds a report event on topic, keyed by the report's id.
func NewReportEvent(topic string, reportID uuid.UUID, data Data) (Event, error) {
	return New(topic, SourceReports, reportID, data)
}

// TaskSnapshot is the task as it stood after the change (JSON as the API's).
type TaskSnapshot struct {
	ID          uuid.UUID  `json:"id"`
	Project     string     `json:"project,omitempty"` // absent only in events written before projects
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	Priority    string     `json:"priority"`
	DueAt       *time.Time `json:"due_at"`
	OwnerID     string     `json:"owner_id"`
	AssigneeID  *string    `json:"assignee_id"`
	Labels      []string   `json:"labels"`
	Subtasks    *Subtasks  `json:"subtasks,omitempty"` // absent only in events written before subtasks
	Archived    bool       `json:"archived"`           // false in events written before the archive
	ArchivedAt  *time.Time `json:"archived_at"`
	// The recurrence fields are absent only in events written before
	// recurrence.
	Recurrence   *string    `json:"recurrence"`
	RecurrenceTZ string     `json:"recurrence_tz"`
	Reminders    []string   `json:"reminders"`
	SeriesID     *uuid.UUID `json:"series_id"`
	// Fields are the task's custom field values by field name, as the
	// API shows them; {} for none, and absent only in events written
	// before custom fields.
	Fields    map[string]json.RawMessage `json:"fields"`
	CreatedAt time.Time                  `json:"created_at"`
	UpdatedAt time.Time                  `json:"updated_at"`
	Version   int64                      `json:"version"`
}

// MarshalJSON writes the snapshot with the defaults a task has in the
// table: a zone ("UTC") and an array of reminders, never "" or null, so
// consumers and the schema need not tell "none" from "absent".
func (s TaskSnapshot) MarshalJSON() ([]byte, error) {
	type plain TaskSnapshot // without this method
	if s.RecurrenceTZ == "" {
		s.RecurrenceTZ = "UTC"
	}
	if s.Reminders == nil {
		s.Reminders = []string{}
	}
	if s.Fields == nil {
		s.Fields = map[string]json.RawMessage{}
	}
	return json.Marshal(plain(s))
}

// Subtasks counts a task's subtasks and those of them closed.
type Subtasks struct {
	Total int32 `json:"total"`
	Done  int32 `json:"done"`
}

// TaskCreatedData is the data of TaskCreated.
type TaskCreatedData struct {
	Actor string       `json:"actor"`
	Task  TaskSnapshot `json:"task"`
}

// TaskUpdatedData is the data of TaskUpdated: every change, with the
// names of the fields that changed.
type TaskUpdatedData struct {
	Actor   string       `json:"actor"`
	Changed []string     `json:"changed"`
	Task    TaskSnapshot `json:"task"`
}

// TaskStatusChangedData is the data of TaskStatusChanged.
type TaskStatusChangedData struct {
	Actor     string       `json:"actor"`
	OldStatus string       `json:"old_status"`
	NewStatus string       `json:"new_status"`
	Task      TaskSnapshot `json:"task"`
}

// TaskAssignedData is the data of TaskAssigned (assignee set, changed or cleared).
type TaskAssignedData struct {
	Actor         string       `json:"actor"`
	OldAssigneeID *string      `json:"old_assignee_id"`
	NewAssigneeID *string      `json:"new_assignee_id"`
	Task          TaskSnapshot `json:"task"`
}

// TaskDeletedData is the data of TaskDeleted: the task as it was.
type TaskDeletedData struct {
	Actor string       `json:"actor"`
	Task  TaskSnapshot `json:"task"`
}

// TaskTrashedData is the data of TaskTrashed: the task as it went to the
// trash, at the version trashing gave it.
type TaskTrashedData struct {
	Actor string       `json:"actor"`
	Task  TaskSnapshot `json:"task"`
}

// TaskRestoredData is the data of TaskRestored: the task as restored.
type TaskRestoredData struct {
	Actor string       `json:"actor"`
	Task  TaskSnapshot `json:"task"`
}

// TaskPurgedData is the data of TaskPurged: the task as it was in the
// trash, and who put it there when; the actor is "" when cleanup purged
// it after the retention.
type TaskPurgedData struct {
	Actor     string       `json:"actor"`
	DeletedAt time.Time    `json:"deleted_at"`
	DeletedBy string       `json:"deleted_by"`
	Task      TaskSnapshot `json:"task"`
}

// TaskReminderData is the data of TaskReminder: one of the task's
// reminders came due; the actor is always the system ("").
type TaskReminderData struct {
	Actor    string       `json:"actor"`
	Reminder string       `json:"reminder"`  // as in the task's reminders, "-P1D"
	RemindAt time.Time    `json:"remind_at"` // when it was due to fire
	Task     TaskSnapshot `json:"task"`
}

// TaskOverdueData is the data of TaskOverdue: the task's due_at passed
// while it was open, live and not archived. Sent once per due date.
type TaskOverdueData struct {
	Actor string       `json:"actor"`
	DueAt time.Time    `json:"due_at"`
	Task  TaskSnapshot `json:"task"`
}

// CommentSnapshot is a comment as the API shows it.
type CommentSnapshot struct {
	ID        uuid.UUID  `json:"id"`
	TaskID    uuid.UUID  `json:"task_id"`
	Author    string     `json:"author"`
	Body      string     `json:"body"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	EditedAt  *time.Time `json:"edited_at"`
	Version   int64      `json:"version"`
}

// CommentData is the data of the comment events: the comment (after the
// change; as it was, for a deletion) and its task, so a consumer knows who
// to tell without reading it.
type CommentData struct {
	Actor   string          `json:"actor"`
	Comment CommentSnapshot `json:"comment"`
	Task    TaskSnapshot    `json:"task"`
	// Mentioned are the subjects the comment's @mentions name for the
	// first time (created: all of them; updated: those the edit added),
	// each of whom may see the task: notify tells each once.
	Mentioned []string `json:"mentioned,omitempty"`
}

// CommentCreatedData is the data of CommentCreated.
type CommentCreatedData CommentData

// CommentUpdatedData is the data of CommentUpdated.
type CommentUpdatedData CommentData

// CommentDeletedData is the data of CommentDeleted.
type CommentDeletedData CommentData

// RelationData is the data of the relation events: "task_id <kind>
// other_id", with each task's project so a consumer can tell who may
// know, and who made the relation when.
type RelationData struct {
	Actor        string    `json:"actor"`
	TaskID       uuid.UUID `json:"task_id"`
	Kind         string    `json:"kind"`
	OtherID      uuid.UUID `json:"other_id"`
	Project      string    `json:"project"`
	OtherProject string    `json:"other_project"`
	CreatedBy    string    `json:"created_by"`
	CreatedAt    time.Time `json:"created_at"`
}

// RelationAddedData is the data of RelationAdded.
type RelationAddedData RelationData

// RelationRemovedData is the data of RelationRemoved.
type RelationRemovedData RelationData

// ReportRequestedData is the data of ReportRequested.
type ReportRequestedData struct {
	ReportID    uuid.UUID `json:"report_id"`
	Kind        string    `json:"kind"`
	RequestedBy string    `json:"requested_by"`
}

// TaskFields are the names TaskUpdatedData.Changed may list: the fields a
// task update can change, named as in the JSON.
var TaskFields = []string{"project", "title", "description", "status", "priority", "due_at", "assignee_id", "labels", "archived",
	"recurrence", "recurrence_tz", "reminders"}

// EventType names each payload's event type.
func (TaskCreatedData) EventType() string       { return TaskCreated }
func (TaskUpdatedData) EventType() string       { return TaskUpdated }
func (TaskStatusChangedData) EventType() string { return TaskStatusChanged }
func (TaskAssignedData) EventType() string      { return TaskAssigned }
func (TaskDeletedData) EventType() string       { return TaskDeleted }
func (TaskTrashedData) EventType() string       { return TaskTrashed }
func (TaskRestoredData) EventType() string      { return TaskRestored }
func (TaskReminderData) EventType() string      { return TaskReminder }
func (TaskOverdueData) EventType() string       { return TaskOverdue }
func (TaskPurgedData) EventType() string        { return TaskPurged }
func (CommentCreatedData) EventType() string    { return CommentCreated }
func (CommentUpdatedData) EventType() string    { return CommentUpdated }
func (CommentDeletedData) EventType() string    { return CommentDeleted }
func (RelationAddedData) EventType() string     { return RelationAdded }
func (RelationRemovedData) EventType() string   { return RelationRemoved }
func (ReportRequestedData) EventType() string   { return ReportRequested }
func (ReportCompletedData) EventType() string   { return ReportCompleted }
func (WebhookDisabledData) EventType() string   { return WebhookDisabled }
func (CommandRejectedData) EventType() string   { return CommandRejected }

// CommandRejectedData is the data of CommandRejected: a command from
// Kafka that can never take effect, what it was and why, so its producer
// learns it (the record itself goes to the dead-letter topic).
type CommandRejectedData struct {
	Command     RejectedCommand `json:"command"`
	Producer    string          `json:"producer"` // the subject its source maps to; "" when unknown
	Status      int             `json:"status"`   // the HTTP status it was refused with
	ProblemType string          `json:"problem_type"`
	Reason      string          `json:"reason"` // the problem's detail
	// Errors are the invalid fields of a 422, as its problem lists them.
	Errors []FieldError `json:"errors,omitempty"`
}

// RejectedCommand names a refused command by its CloudEvents attributes.
type RejectedCommand struct {
	ID          string `json:"id"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	Subject     string `json:"subject,omitempty"`
	ExternalRef string `json:"externalref,omitempty"`
}

// FieldError is one invalid field of a refused command.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

func (DigestWeeklyData) EventType() string { return DigestWeekly }

// ReportCompletedData is the data of ReportCompleted.
type ReportCompletedData struct {
	ReportID    uuid.UUID `json:"report_id"`
	Kind        string    `json:"kind"`
	RequestedBy string    `json:"requested_by"`
	Status      string    `json:"status"` // succeeded or failed
	Rows        int64     `json:"rows"`
	Error       string    `json:"error,omitempty"`
}

// WebhookDisabledData is the data of WebhookDisabled: a webhook failed
// too many deliveries in a row and was turned off; its owner is told.
type WebhookDisabledData struct {
	WebhookID      uuid.UUID `json:"webhook_id"`
	Owner          string    `json:"owner"`
	Project        *string   `json:"project"` // nil: every project
	URL            string    `json:"url"`
	Failures       int       `json:"failures"`
	LastStatusCode *int      `json:"last_status_code"`
	LastError      string    `json:"last_error"`
}

// DigestWeeklyData is the data of DigestWeekly: one subject's digest of
// one ISO week, bounded (at most 20 open tasks listed, 10 projects with 3
// titles each). The chart is not in it: it stays in the digests row
// DigestID names, and notify copies it into the email.
type DigestWeeklyData struct {
	DigestID uuid.UUID `json:"digest_id"`
	Subject  string    `json:"subject"`
	Week     string    `json:"week"` // ISO week, "2026-W49"
	TimeZone string    `json:"time_zone"`
	// From and To bound last week, the one Completed covers: Monday 00:00
	// to Monday 00:00 in TimeZone.
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	Open      int64           `json:"open"`    // open tasks owned or assigned
	Overdue   int64           `json:"overdue"` // of those, past due
	OpenTasks []DigestTask    `json:"open_tasks"`
	Completed int64           `json:"completed"` // done last week in the subject's projects
	Projects  []DigestProject `json:"completed_by_project"`
	Chart     bool            `json:"chart"` // the digests row holds a PNG
}

// DigestTask is one open task in a digest.
type DigestTask struct {
	ID      uuid.UUID  `json:"id"`
	Title   string     `json:"title"`
	Project string     `json:"project"`
	Status  string     `json:"status"`
	DueAt   *time.Time `json:"due_at"`
	Overdue bool       `json:"overdue"`
}

// DigestProject is what one project completed last week.
type DigestProject struct {
	Project string   `json:"project"`
	Count   int64    `json:"count"`
	Titles  []string `json:"titles"` // the latest few
}
