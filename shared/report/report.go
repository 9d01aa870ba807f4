// Package report builds reports over tasks asynchronously: POST /reports
// records a pending report and emits report.requested (through the
// outbox, in the same transaction); build-report, the sink of that event,
// claims the report, streams the tasks its requester may see into chunks
// kept in PostgreSQL, and emits report.completed; GET /reports/{id} shows
// its state and GET /reports/{id}/content downloads it. Store is the one
// place with SQL for reports.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/task"
)

// Kind is what a report computes.
type Kind string

const (
	// KindStatusSummary counts tasks by status and priority, the overdue
	// ones, and those created and completed per day over a period.
	KindStatusSummary Kind = "status_summary"
	// KindTasksExport lists the tasks matching the list filters.
	KindTasksExport Kind = "tasks_export"
	// KindProjectAnalytics is one project's throughput and cycle time per
	// week over a period, and its open work by assignee.
	KindProjectAnalytics Kind = "project_analytics"
)

// Format is how a report's content is encoded.
type Format string

const (
	FormatJSON  Format = "json"  // status_summary, project_analytics
	FormatSVG   Format = "svg"   // status_summary, project_analytics: charts
	FormatPNG   Format = "png"   // status_summary, project_analytics: charts
	FormatCSV   Format = "csv"   // tasks_export
	FormatJSONL Format = "jsonl" // tasks_export, one task per line
	FormatXLSX  Format = "xlsx"  // tasks_export, a spreadsheet
)

// ContentType is the media type of content in format f.
func (f Format) ContentType() string {
	switch f {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatJSONL:
		return "application/jsonl"
	case FormatXLSX:
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case FormatSVG:
		return "image/svg+xml"
	case FormatPNG:
		return "image/png"
	}
	return "application/json"
}

func (f Format) extension() string { return string(f) }

// Status is where a report stands.
type Status string

const (
	StatusPending   Status = "pending"
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Filters are GET /tasks's filters, named as its query parameters.
type Filters struct {
	Project    string        `json:"project,omitempty"`
	Status     []task.Status `json:"status,omitempty"`
	OwnerID    string        `json:"owner_id,omitempty"`
	AssigneeID string        `json:"assignee_id,omitempty"`
	Label      string        `json:"label,omitempty"`
	DueBefore  *time.Time    `json:"due_before,omitempty"`
	DueAfter   *time.Time    `json:"due_after,omitempty"`
	Q          string        `json:"q,omitempty"`
}

// Period is a range of UTC days, both ends included.
type Period struct {
	From string `json:"from"` // YYYY-MM-DD
	To   string `json:"to"`
}

// DefaultPeriodDays is the period a summary covers when none is given:
// the last 30 days, today included.
const DefaultPeriodDays = 30

// DefaultAnalyticsDays is the period project analytics cover when none is
// given: the last 12 weeks, today included.
const DefaultAnalyticsDays = 84

// Bounds returns the period as [from, to) instants at midnight UTC.
func (p Period) Bounds() (from, to time.Time, err error) {
	from, err1 := time.Parse(time.DateOnly, p.From)
	last, err2 := time.Parse(time.DateOnly, p.To)
	if err := errors.Join(err1, err2); err != nil {
		return time.Time{}, time.Time{}, err
	}
	return from, last.AddDate(0, 0, 1), nil
}

// Request is the body of POST /reports, and what a report keeps of it.
type Request struct {
	Kind    Kind    `json:"kind"`
	Format  Format  `json:"format"`
	Filters Filters `json:"filters"`
	Period  *Period `json:"period,omitempty"`  // status_summary, project_analytics
	Project string  `json:"project,omitempty"` // project_analytics only
}

// Limits of a request's text filters; the same as the list's.
const maxQuery = 500

// ParseRequest decodes and validates a request body, filling defaults:
// format csv for an export, json for a summary, and for a summary the last
// DefaultPeriodDays days up to today (UTC at now). body is what
// httpx.ReadBody returned, which bounds what decoding it can cost: at most
// 1 MiB and httpx.MaxJSONTokens tokens (filters.status is a list).
func ParseRequest(body []byte, now time.Time) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return r, errs.Validation(errs.FieldError{Field: te.Field, Detail: "has the wrong type"})
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return r, errs.Validation(errs.FieldError{Field: "filters", Detail: "due_before and due_after must be RFC 3339 date-times"})
		}
		return r, errs.Syntax("the body is not a report request: " + err.Error())
	}
	if dec.More() {
		return r, errs.Syntax("the body must hold exactly one JSON object")
	}
	var bad errs.Fields
	add := bad.Add
	switch r.Kind {
	case KindTasksExport:
		switch r.Format {
		case "":
			r.Format = FormatCSV
		case FormatCSV, FormatJSONL, FormatXLSX:
		default:
			add("format", "a tasks_export is csv, jsonl or xlsx")
		}
		if r.Period != nil {
			add("period", "only a status_summary or project_analytics has a period")
		}
	case KindStatusSummary, KindProjectAnalytics:
		switch r.Format {
		case "":
			r.Format = FormatJSON
		case FormatJSON, FormatSVG, FormatPNG:
		default:
			add("format", fmt.Sprintf("a %s is json, svg or png", r.Kind))
		}
		days := DefaultPeriodDays
		if r.Kind == KindProjectAnalytics {
			days = DefaultAnalyticsDays
			switch {
			case r.Project == "":
				add("project", "is required: the key of the project to analyse")
			case !task.ValidProject(r.Project):
				add("project", "must be a project key")
			}
			if !r.Filters.empty() {
				add("filters", "a project_analytics covers its whole project: no filters")
			}
		}
		if r.Period == nil {
			today := now.UTC().Truncate(24 * time.Hour)
			r.Period = &Period{From: today.AddDate(0, 0, 1-days).Format(time.DateOnly), To: today.Format(time.DateOnly)}
		}
		from, to, err := r.Period.Bounds()
		switch {
		case err != nil:
			add("period", "from and to must be dates, YYYY-MM-DD")
		case !from.Before(to):
			add("period", "from must not be after to")
		case to.Sub(from) > task.MaxSummaryDays*24*time.Hour:
			add("period", fmt.Sprintf("must span at most %d days", task.MaxSummaryDays))
		}
	case "":
		add("kind", "is required: status_summary, tasks_export or project_analytics")
	default:
		add("kind", "must be status_summary, tasks_export or project_analytics")
	}
	if r.Project != "" && r.Kind != KindProjectAnalytics && r.Kind != "" {
		add("project", "only a project_analytics names a project; an export or summary filters on filters.project")
	}
	for _, fe := range r.Filters.check() {
		add(fe.Field, fe.Detail)
	}
	return r, bad.Err()
}

// empty reports whether no filter is set.
func (f Filters) empty() bool {
	return f.Project == "" && len(f.Status) == 0 && f.OwnerID == "" && f.AssigneeID == "" && f.Label == "" &&
		f.DueBefore == nil && f.DueAfter == nil && f.Q == ""
}

func (f *Filters) check() []errs.FieldError {
	var bad []errs.FieldError
	var statuses []task.Status
	for _, s := range f.Status {
		if !s.Valid() {
			bad = append(bad, errs.FieldError{Field: "filters.status", Detail: "must list todo, in_progress, blocked, done, cancelled"})
			break
		}
		if !slices.Contains(statuses, s) {
			statuses = append(statuses, s)
		}
	}
	f.Status = statuses
	if f.Project != "" && !task.ValidProject(f.Project) {
		bad = append(bad, errs.FieldError{Field: "filters.project", Detail: "must be a project key"})
	}
	for _, t := range []struct {
		name, value string
		max         int
	}{
		{"filters.owner_id", f.OwnerID, task.MaxSubject}, {"filters.assignee_id", f.AssigneeID, task.MaxSubject},
		{"filters.label", f.Label, task.MaxLabel}, {"filters.q", f.Q, maxQuery},
	} {
		if t.value == "" {
			continue
		}
		if strings.TrimSpace(t.value) == "" || utf8.RuneCountInString(t.value) > t.max || strings.IndexFunc(t.value, unicode.IsControl) >= 0 {
			bad = append(bad, errs.FieldError{Field: t.name, Detail: fmt.Sprintf("must be 1 to %d printable characters", t.max)})
		}
	}
	return bad
}

// query is the task selection of f for a requester whose scope is scope
// (nil sees every task).
func (f Filters) query(scope *task.Scope) task.ExportQuery {
	return task.ExportQuery{
		Only: scope, Project: f.Project, Statuses: f.Status, OwnerID: f.OwnerID, AssigneeID: f.AssigneeID,
		Label: f.Label, DueBefore: f.DueBefore, DueAfter: f.DueAfter, Query: f.Q,
	}
}

// Report is one row of the reports table.
type Report struct {
	ID           uuid.UUID
	Request      Request // kind, format, filters, period
	RequestedBy  string
	Scope        *task.Scope // nil: every task; else what the requester could list
	Status       Status
	Attempt      int
	ProgressRows int64
	TotalRows    *int64
	ContentBytes *int64
	Chunks       *int
	Error        string
	CreatedAt    time.Time
	StartedAt    *time.Time
	FinishedAt   *time.Time
}

// Progress is how far a report got: rows written of total (the total is
// known once a build has counted it).
type Progress struct {
	Rows  int64  `json:"rows"`
	Total *int64 `json:"total"`
}

// View is a report as GET /reports/{id} shows it.
type View struct {
	ID          uuid.UUID  `json:"id"`
	Kind        Kind       `json:"kind"`
	Format      Format     `json:"format"`
	Filters     Filters    `json:"filters"`
	Period      *Period    `json:"period,omitempty"`
	Project     string     `json:"project,omitempty"`
	Status      Status     `json:"status"`
	Progress    *Progress  `json:"progress,omitempty"`
	Rows        *int64     `json:"rows,omitempty"`
	ContentType string     `json:"content_type,omitempty"`
	SizeBytes   *int64     `json:"size_bytes,omitempty"`
	ContentURL  string     `json:"content_url,omitempty"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
}

// Location is where a report is read.
func Location(id uuid.UUID) string { return "/reports/" + id.String() }

// View returns r as the API shows it: progress while it runs, size and
// content link once it succeeded, the error if it failed.
func (r Report) View() View {
	v := View{
		ID: r.ID, Kind: r.Request.Kind, Format: r.Request.Format, Filters: r.Request.Filters, Period: r.Request.Period,
		Project: r.Request.Project, Status: r.Status, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}
	switch r.Status {
	case StatusRunning:
		v.Progress = &Progress{Rows: r.ProgressRows, Total: r.TotalRows}
	case StatusSucceeded:
		rows := r.ProgressRows
		v.Rows = &rows
		v.ContentType = r.Request.Format.ContentType()
		v.SizeBytes = r.ContentBytes
		v.ContentURL = Location(r.ID) + "/content"
	case StatusFailed:
		v.Error = r.Error
	}
	return v
}
