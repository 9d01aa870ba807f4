// Package task is the task domain: the Task record, its validation rules,
// who may do what to it, and its PostgreSQL store (the one place with SQL
// for the tasks table).
package task

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
)

// Status is where a task stands.
type Status string

const (
	StatusTodo       Status = "todo"
	StatusInProgress Status = "in_progress"
	StatusBlocked    Status = "blocked"
	StatusDone       Status = "done"
	StatusCancelled  Status = "cancelled"
)

// Statuses lists every status, in the order documents show them.
var Statuses = []Status{StatusTodo, StatusInProgress, StatusBlocked, StatusDone, StatusCancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusTodo, StatusInProgress, StatusBlocked, StatusDone, StatusCancelled:
		return true
	}
	return false
}

// Priority orders work.
type Priority string

const (
	PriorityLow    Priority = "low"
	PriorityMedium Priority = "medium"
	PriorityHigh   Priority = "high"
	PriorityUrgent Priority = "urgent"
)

// Priorities lists every priority, lowest first.
var Priorities = []Priority{PriorityLow, PriorityMedium, PriorityHigh, PriorityUrgent}

// Valid reports whether p is a known priority.
func (p Priority) Valid() bool {
	switch p {
	case PriorityLow, PriorityMedium, PriorityHigh, PriorityUrgent:
		return true
	}
	return false
}

// Task is one row of the tasks table, and the API's JSON representation.
type Task struct {
	ID          uuid.UUID  `json:"id" db:"id"`
	Project     string     `json:"project" db:"project"` // its project's key
	Title       string     `json:"title" db:"title"`
	Description string     `json:"description" db:"description"`
	Status      Status     `json:"status" db:"status"`
	Priority    Priority   `json:"priority" db:"priority"`
	DueAt       *time.Time `json:"due_at" db:"due_at"`
	OwnerID     string     `json:"owner_id" db:"owner_id"`
	AssigneeID  *string    `json:"assignee_id" db:"assignee_id"`
	Labels      []string   `json:"labels" db:"labels"`
	Subtasks    Subtasks   `json:"subtasks"`
	// Archived tasks leave the default lists (GET /tasks?archived=true
	// shows them) and are otherwise tasks; a patch of archived sets or
	// clears ArchivedAt, which the store keeps.
	Archived   bool       `json:"archived"`
	ArchivedAt *time.Time `json:"archived_at"`
	// Recurrence is an RFC 5545 RRULE anchored on DueAt in RecurrenceTZ
	// (an IANA zone, "UTC" unless set): when the task is done, the recur
	// function files the next occurrence (docs/lifecycle.md).
	Recurrence   *string `json:"recurrence"`
	RecurrenceTZ string  `json:"recurrence_tz"`
	// Reminders are ISO 8601 durations before DueAt ("-P1D", "-PT1H"),
	// normalized; the remind function sends each once.
	Reminders []string `json:"reminders"`
	// SeriesID is the first task of the series this one recurs in; nil for
	// a task that is no later occurrence of one. The store keeps it.
	SeriesID *uuid.UUID `json:"series_id"`
	// Fields are the task's custom field values by field name, as the API
	// shows them: StoredFields rendered through the project's live
	// definitions (field.Set.Present), so a renamed field shows its new
	// name and a deleted one nothing, at once. nil is none ({} in JSON).
	Fields map[string]json.RawMessage `json:"fields"`
	// StoredFields are the values as the tasks.fields column holds them,
	// keyed by definition id; only the store reads and writes them.
	StoredFields map[string]json.RawMessage `json:"-"`
	// FieldsPatch is a write's merge patch of Fields by name (a null value
	// clears a field), validated by the store against the project's
	// definitions inside the write (field.Set.Apply); nil changes nothing.
	FieldsPatch map[string]json.RawMessage `json:"-"`
	// DroppedFields names, after a move to another project, the fields
	// the target project does not define, whose values the move dropped.
	// Set by Update only; not part of the representation.
	DroppedFields []string  `json:"-"`
	CreatedAt     time.Time `json:"created_at" db:"created_at"`
	UpdatedAt     time.Time `json:"updated_at" db:"updated_at"`
	Version       int64     `json:"version" db:"version"`
}

// Subtasks counts a task's subtasks (tasks subtask_of it) and those of
// them that are closed: done or cancelled, needing no more work. The
// store keeps them; no patch writes them.
type Subtasks struct {
	Total int32 `json:"total"`
	Done  int32 `json:"done"`
}

// Closed reports whether a task of status s counts as done among its
// parent's subtasks.
func (s Status) Closed() bool { return s == StatusDone || s == StatusCancelled }

// Errors the store returns; callers use errors.Is.
var (
	ErrNotFound = errs.New(errs.NotFound, "task not found", "")
	// ErrNoProject: the task names a project that does not exist, or one
	// the caller may not see (which must read the same).
	ErrNoProject = errs.Validation(errs.FieldError{Field: "project", Detail: "names no project you may add tasks to"})
	// ErrVersionMismatch: the caller's If-Match named another version.
	ErrVersionMismatch = errs.New(errs.Precondition, "task version mismatch",
		"the task has changed since the version named in If-Match; fetch it again")
)

// fieldsDropped refuses a move asked with drop_fields=false that would
// drop the values of fields the target project does not define: a 422
// naming each, so the client can fix them or move with drop_fields=true.
func fieldsDropped(target string, names []string) error {
	var f errs.Fields
	for _, n := range names {
		f.Add("fields."+n, "is not defined in project "+target+", so the move would drop its value; move with drop_fields=true to drop it")
	}
	return f.Err()
}
