package report

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/taskfn/taskfn/shared/task"
)

// writeAnalytics writes the project analytics of r into out: the tasks of
// its project within its recorded scope (a requester who lost the project
// since asking still sees no more than they could then), aggregated in
// the database in one snapshot under the build's statement timeout.
func (w *Worker) writeAnalytics(ctx context.Context, r Report, q task.ExportQuery, opts task.ExportOptions, out *chunkWriter) (int64, error) {
	if r.Request.Period == nil || r.Request.Project == "" {
		return 0, &badReportError{"project analytics need a project and a period"}
	}
	from, to, err := r.Request.Period.Bounds()
	if err != nil {
		return 0, &badReportError{"its period is not valid"}
	}
	chart := r.Request.Format == FormatSVG || r.Request.Format == FormatPNG
	if chart && w.cfg.Render.Analytics == nil {
		return 0, errNoRenderer
	}
	q.Project = r.Request.Project
	now := w.now().UTC()
	a, err := w.tasks.Analyze(ctx, q, from, to, now, opts)
	if err != nil {
		return 0, err
	}
	err = drawOrEncode(out, chart, func() error { return w.cfg.Render.Analytics(out, r.Request.Format, r, a, now) },
		func() any { return analyticsDocument(r, a, now) })
	if err != nil {
		return 0, err
	}
	// The tasks the analytics describe: those completed in the period and
	// those open now.
	out.rows = a.Completed + a.Others.Total
	for _, o := range a.Open {
		out.rows += o.Total
	}
	return out.rows, nil
}

// analyticsDoc is the content of project analytics as json.
type analyticsDoc struct {
	Kind        Kind      `json:"kind"`
	GeneratedAt time.Time `json:"generated_at"`
	Scope       string    `json:"scope"` // "all" or "own"
	Project     string    `json:"project"`
	Period      Period    `json:"period"`
	Completed   int64     `json:"completed"`
	CycleTime   cycleDoc  `json:"cycle_time"`
	PerWeek     []weekDoc `json:"per_week"`
	Open        openDoc   `json:"open"`
	Overdue     int64     `json:"overdue"`
}

// cycleDoc is a median cycle time in hours (null without tasks) over the
// tasks whose history shows when work began.
type cycleDoc struct {
	Tasks       int64    `json:"tasks"`
	MedianHours *float64 `json:"median_hours"`
}

type weekDoc struct {
	Week      string   `json:"week"` // ISO 8601, 2026-W02
	From      string   `json:"from"` // its first day in the period
	To        string   `json:"to"`   // its last day in the period
	Completed int64    `json:"completed"`
	CycleTime cycleDoc `json:"cycle_time"`
}

type openDoc struct {
	Total      int64                 `json:"total"`
	ByStatus   map[task.Status]int64 `json:"by_status"`
	ByAssignee []assigneeDoc         `json:"by_assignee"`
	Others     othersDoc             `json:"others"`
}

type assigneeDoc struct {
	Assignee *string               `json:"assignee"` // null: unassigned
	Total    int64                 `json:"total"`
	ByStatus map[task.Status]int64 `json:"by_status"`
}

type othersDoc struct {
	Assignees int64                 `json:"assignees"`
	Total     int64                 `json:"total"`
	ByStatus  map[task.Status]int64 `json:"by_status"`
}

func cycleDocOf(c task.CycleTime) cycleDoc {
	d := cycleDoc{Tasks: c.Tasks}
	if c.Median != nil {
		h := math.Round(c.Median.Hours()*100) / 100
		d.MedianHours = &h
	}
	return d
}

func analyticsDocument(r Report, a task.Analytics, now time.Time) analyticsDoc {
	scope := "all"
	if r.Scope != nil {
		scope = "own"
	}
	from, to, _ := r.Request.Period.Bounds()
	d := analyticsDoc{
		Kind: KindProjectAnalytics, GeneratedAt: now, Scope: scope, Project: r.Request.Project, Period: *r.Request.Period,
		Completed: a.Completed, CycleTime: cycleDocOf(a.Cycle), PerWeek: make([]weekDoc, len(a.Weeks)),
		Open: openDoc{
			ByStatus: map[task.Status]int64{}, ByAssignee: make([]assigneeDoc, len(a.Open)),
			Others: othersDoc{Assignees: a.OthersAssignees, Total: a.Others.Total, ByStatus: a.Others.ByStatus},
		},
		Overdue: a.Overdue,
	}
	for i, wk := range a.Weeks {
		year, n := wk.Start.ISOWeek()
		first, last := wk.Start, wk.Start.AddDate(0, 0, 6)
		if first.Before(from) {
			first = from
		}
		if !last.Before(to) {
			last = to.AddDate(0, 0, -1)
		}
		d.PerWeek[i] = weekDoc{Week: fmt.Sprintf("%d-W%02d", year, n), From: first.Format(time.DateOnly), To: last.Format(time.DateOnly),
			Completed: wk.Completed, CycleTime: cycleDocOf(wk.Cycle)}
	}
	for _, st := range task.OpenStatuses {
		d.Open.ByStatus[st] = a.Others.ByStatus[st]
	}
	d.Open.Total = a.Others.Total
	for i, o := range a.Open {
		ad := assigneeDoc{Total: o.Total, ByStatus: o.ByStatus}
		if o.Assignee != "" {
			ad.Assignee = &o.Assignee
		}
		d.Open.ByAssignee[i] = ad
		d.Open.Total += o.Total
		for st, n := range o.ByStatus {
			d.Open.ByStatus[st] += n
		}
	}
	return d
}
