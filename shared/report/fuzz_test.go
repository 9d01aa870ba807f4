package report

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// FuzzParseRequest drives the body of POST /reports: any body is refused
// with a 4xx or gives a request the store can record (its params are
// jsonb, so every text must be one PostgreSQL takes) and a build can run:
// a kind with one of its formats, and for a summary a period within
// task.MaxSummaryDays.
func FuzzParseRequest(f *testing.F) {
	for _, b := range []string{
		// TestRequestValidation's and the export tests' bodies.
		`{"kind":"tasks_export"}`, `{"kind":"tasks_export","format":"jsonl"}`, `{"kind":"tasks_export","filters":{"owner_id":"bob"}}`,
		`{"kind":"tasks_export","filters":{"status":["done","in_progress"],"assignee_id":"bob"}}`,
		`{"kind":"tasks_export","filters":{"label":"ops"}}`, `{"kind":"tasks_export","filters":{"due_before":"2026-03-01T00:00:00Z"}}`,
		`{"kind":"status_summary","period":{"from":"2026-01-01","to":"2026-01-03"}}`, `{`, `{"kind":"tasks_export","colour":"red"}`,
		`{}`, `{"kind":"pie_chart"}`, `{"kind":"tasks_export","format":"json"}`, `{"kind":"status_summary","format":"csv"}`,
		`{"kind":"tasks_export","period":{"from":"2026-01-01","to":"2026-01-02"}}`,
		`{"kind":"status_summary","period":{"from":"2026-02-01","to":"2026-01-01"}}`,
		`{"kind":"status_summary","period":{"from":"2020-01-01","to":"2026-01-01"}}`,
		`{"kind":"status_summary","period":{"from":"yesterday","to":"today"}}`, `{"kind":"tasks_export","filters":{"status":["open"]}}`,
		`{"kind":"tasks_export","filters":{"label":"  "}}`, `{"kind":"tasks_export","filters":{"status":"done"}}`,
		`{"kind":"tasks_export","filters":{"due_before":"soon"}}`, `{"kind":"status_summary"}`,
		// Edges.
		`{"kind":"status_summary","period":null}`, `{"kind":"status_summary","period":{"from":"0000-01-01","to":"0000-01-01"}}`,
		`{"kind":"status_summary","period":{"from":"9999-12-31","to":"9999-12-31"}}`, `{"kind":"tasks_export","filters":{"q":"a\u0000"}}`,
		`{"kind":"tasks_export","filters":{"status":["todo","todo",null]}}`, `{"kind":"tasks_export"} {}`, `null`, `[]`,
		`{"kind":"tasks_export","filters":{"due_after":1}}`, `{"kind":1}`, `{"Kind":"tasks_export"}`,
		// Issue #19's formats, and their wrong pairings.
		`{"kind":"tasks_export","format":"xlsx"}`, `{"kind":"status_summary","format":"png"}`, `{"kind":"status_summary","format":"svg"}`,
		`{"kind":"status_summary","format":"xlsx"}`, `{"kind":"tasks_export","format":"png"}`, `{"kind":"tasks_export","format":"XLSX"}`,
		// Project analytics: a project required, alone, no filters.
		`{"kind":"project_analytics","project":"web"}`, `{"kind":"project_analytics","project":"web","format":"png","period":{"from":"2026-01-01","to":"2026-03-31"}}`,
		`{"kind":"project_analytics"}`, `{"kind":"project_analytics","project":"~alice","format":"svg"}`, `{"kind":"project_analytics","project":"a b"}`,
		`{"kind":"project_analytics","project":"web","filters":{"label":"x"}}`, `{"kind":"tasks_export","project":"web"}`,
		`{"kind":"project_analytics","project":"web","format":"csv"}`, `{"kind":"project_analytics","project":1}`,
	} {
		f.Add([]byte(b))
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body, now)
		if httpxtest.Want4xx(t, err, body) != 0 {
			var ve *errs.ValidationError
			if errs.KindOf(err) != errs.Invalid && !errors.As(err, &ve) {
				t.Fatalf("%q: %v is neither a syntax nor a validation error", body, err)
			}
			return
		}
		switch {
		case r.Kind == KindTasksExport && (r.Format == FormatCSV || r.Format == FormatJSONL || r.Format == FormatXLSX) && r.Period == nil && r.Project == "":
		case (r.Kind == KindStatusSummary && r.Project == "" || r.Kind == KindProjectAnalytics && task.ValidProject(r.Project) && r.Filters.empty()) &&
			(r.Format == FormatJSON || r.Format == FormatSVG || r.Format == FormatPNG) && r.Period != nil:
			from, to, err := r.Period.Bounds()
			if err != nil || !from.Before(to) || to.Sub(from) > task.MaxSummaryDays*24*time.Hour {
				t.Fatalf("%q: period %+v accepted (%v)", body, *r.Period, err)
			}
		default:
			t.Fatalf("%q: kind %q, format %q, period %v accepted", body, r.Kind, r.Format, r.Period)
		}
		for i, s := range r.Filters.Status {
			if !s.Valid() || slices.Contains(r.Filters.Status[:i], s) {
				t.Fatalf("%q: statuses %q accepted", body, r.Filters.Status)
			}
		}
		for _, s := range []string{r.Filters.OwnerID, r.Filters.AssigneeID, r.Filters.Label, r.Filters.Q} {
			if !pg.TextOK(s) {
				t.Fatalf("%q: filter %q accepted, which the database cannot take", body, s)
			}
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("%q: the request does not encode for the store: %v", body, err)
		}
	})
}

// FuzzRequestedID drives build-report's reading of report.requested data:
// any content type and data give a report id or an ErrPoison (400: the
// event goes to the dead letters, never redelivered).
func FuzzRequestedID(f *testing.F) {
	id := uuid.MustParse("0190a4c2-7b1e-7c3d-9e4f-123456789abc")
	data, _ := json.Marshal(events.ReportRequestedData{ReportID: id, Kind: "tasks_export", RequestedBy: "alice"})
	for _, c := range []struct{ contentType, data string }{
		{"application/json", string(data)}, {"", string(data)}, {"application/json; charset=utf-8", string(data)},
		{"application/json", `{"report_id":`}, {"application/json", `{"kind":"tasks_export","requested_by":"a"}`},
		{"text/plain", string(data)}, {"application/cloudevents+json", string(data)}, {"application/json;", `{}`},
		{"application/json", `{"report_id":"00000000-0000-0000-0000-000000000000"}`}, {"application/json", `{"report_id":"x"}`},
		{"application/json", `{"report_id":"` + id.String() + `"} trailing`}, {"", ``}, {"", `null`},
	} {
		f.Add(c.contentType, []byte(c.data))
	}
	f.Fuzz(func(t *testing.T, contentType string, data []byte) {
		got, err := requestedID(contentType, data)
		if err != nil {
			if !errors.Is(err, errs.ErrPoison) {
				t.Fatalf("%q %q: %v, want ErrPoison", contentType, data, err)
			}
			httpxtest.Want4xx(t, err, data)
			return
		}
		if got == uuid.Nil {
			t.Fatalf("%q %q: the nil report id accepted", contentType, data)
		}
	})
}
