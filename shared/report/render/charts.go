package render

import (
	"fmt"
	"image/color"
	"io"
	"strings"
	"time"

	"github.com/taskfn/taskfn/shared/chart"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// The statuses as the cumulative flow stacks them, bottom first: finished
// work settles at the bottom, waiting work rides on top.
var flowOrder = []task.Status{task.StatusDone, task.StatusCancelled, task.StatusBlocked, task.StatusInProgress, task.StatusTodo}

var statusColors = map[task.Status]color.Color{
	task.StatusDone:       color.RGBA{0x22, 0xc5, 0x5e, 0xff}, // green
	task.StatusCancelled:  color.RGBA{0xa8, 0xa2, 0x9e, 0xff}, // grey
	task.StatusBlocked:    color.RGBA{0xef, 0x44, 0x44, 0xff}, // red
	task.StatusInProgress: color.RGBA{0x3b, 0x82, 0xf6, 0xff}, // blue
	task.StatusTodo:       color.RGBA{0xfa, 0xcc, 0x15, 0xff}, // yellow
}

// summaryFigure is a status summary's charts, one figure: the cumulative
// flow (tasks by status at the end of each day, from their history) above
// the tasks created and completed each day. Two panels of one figure
// rather than a choice of chart: one request, one picture that answers
// both "where does the work stand" and "is it keeping up".
func summaryFigure(r report.Report, s task.Summary, now time.Time) chart.Figure {
	n := len(s.Days)
	f := chart.Figure{
		Title: "Status summary",
		Period: fmt.Sprintf("%s to %s (UTC days) · %s · %d tasks now · generated %s",
			r.Request.Period.From, r.Request.Period.To, describeScope(r), s.Total, now.UTC().Format("2006-01-02 15:04 UTC")),
		Days:    make([]time.Time, n),
		Stacked: chart.Panel{Title: "Cumulative flow: tasks by status at the end of each day", YLabel: "tasks"},
		Bars: chart.Panel{Title: "Created and completed per day", YLabel: "tasks", Series: []chart.Series{
			{Name: "created", Color: color.RGBA{0x63, 0x66, 0xf1, 0xff}, Values: make([]float64, n)},
			{Name: "completed", Color: statusColors[task.StatusDone], Values: make([]float64, n)},
		}},
	}
	for _, st := range flowOrder {
		f.Stacked.Series = append(f.Stacked.Series, chart.Series{Name: string(st), Color: statusColors[st], Values: make([]float64, n)})
	}
	for i, d := range s.Days {
		f.Days[i] = d.Date
		for j, st := range flowOrder {
			f.Stacked.Series[j].Values[i] = float64(d.ByStatus[st])
		}
		f.Bars.Series[0].Values[i] = float64(d.Created)
		f.Bars.Series[1].Values[i] = float64(d.Completed)
	}
	return f
}

// describeScope says whose tasks a summary covers, and how filtered.
func describeScope(r report.Report) string {
	who := "every task"
	if r.Scope != nil {
		who = "the requester's tasks"
	}
	f := r.Request.Filters
	var by []string
	for _, kv := range [][2]string{{"project", f.Project}, {"owner", f.OwnerID}, {"assignee", f.AssigneeID}, {"label", f.Label}, {"search", f.Q}} {
		if kv[1] != "" {
			by = append(by, kv[0]+" "+kv[1])
		}
	}
	if len(f.Status) > 0 {
		st := make([]string, len(f.Status))
		for i, s := range f.Status {
			st[i] = string(s)
		}
		by = append(by, "status "+strings.Join(st, ", "))
	}
	if f.DueBefore != nil || f.DueAfter != nil {
		by = append(by, "due dates")
	}
	if len(by) > 0 {
		who += " with " + strings.Join(by, "; ")
	}
	return who
}

// Figure draws the charts of status summary s of report r, made at now,
// into out as format: svg or png.
func Figure(out io.Writer, format report.Format, r report.Report, s task.Summary, now time.Time) error {
	f := summaryFigure(r, s, now)
	if format == report.FormatSVG {
		return f.SVG(out)
	}
	return f.PNG(out)
}
