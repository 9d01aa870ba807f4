// Package events names taskfn's CloudEvents and their data payloads. Types
// are versioned: a breaking change of a payload is a new type, never an edit.
package events

import (
	"time"

	"github.com/google/uuid"
)

// Event types.
const (
	TaskCreated       = "dev.taskfn.task.created.v1"
	TaskUpdated       = "dev.taskfn.task.updated.v1"
	TaskStatusChanged = "dev.taskfn.task.status_changed.v1"
	TaskAssigned      = "dev.taskfn.task.assigned.v1"
	TaskDeleted       = "dev.taskfn.task.deleted.v1"
	ReportRequested   = "dev.taskfn.report.requested.v1"
	ReportCompleted   = "dev.taskfn.report.completed.v1"
)

// Types lists every event type taskfn emits.
var Types = []string{TaskCreated, TaskUpdated, TaskStatusChanged, TaskAssigned, TaskDeleted, ReportRequested, ReportCompleted}

// Sources: the CloudEvents "source" of each family.
const (
	SourceTasks   = "/taskfn/tasks"
	SourceReports = "/taskfn/reports"
)

// Default topics (configurable): task events keyed by task id, report
// events keyed by report id, so each entity's events stay in order.
const (
	DefaultTasksTopic   = "taskfn.tasks"
	DefaultReportsTopic = "taskfn.reports"
)

// TaskSnapshot is the task as it stood after the change (JSON as the API's).
type TaskSnapshot struct {
	ID          uuid.UUID  `json:"id"`
	Title       string     `json:"title"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	Priority    string     `json:"priority"`
	DueAt       *time.Time `json:"due_at"`
	OwnerID     string     `json:"owner_id"`
	AssigneeID  *string    `json:"assignee_id"`
	Labels      []string   `json:"labels"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	Version     int64      `json:"version"`
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

// ReportRequestedData is the data of ReportRequested.
type ReportRequestedData struct {
	ReportID    uuid.UUID `json:"report_id"`
	Kind        string    `json:"kind"`
	RequestedBy string    `json:"requested_by"`
}

// ReportCompletedData is the data of ReportCompleted.
type ReportCompletedData struct {
	ReportID    uuid.UUID `json:"report_id"`
	Kind        string    `json:"kind"`
	RequestedBy string    `json:"requested_by"`
	Status      string    `json:"status"` // succeeded or failed
	Rows        int64     `json:"rows"`
	Error       string    `json:"error,omitempty"`
}
