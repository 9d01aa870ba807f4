package render

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"time"

	"github.com/taskfn/taskfn/shared/chart"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// chartAssignees is how many assignees the open-work panel names; the
// rest are one bar, "others" (the JSON names up to
// task.MaxAnalyticsAssignees).
const chartAssignees = 10

// analyticsFigure is project analytics as one figure: throughput per ISO
// week (bars), the median cycle time per week (a line, in days, a point
// for each week that has one), and the open tasks of the top assignees
// stacked by status.
func analyticsFigure(r report.Report, a task.Analytics, now time.Time) chart.Weekly {
	n := len(a.Weeks)
	cycle := "no task with a known start"
	if a.Cycle.Median != nil {
		cycle = fmt.Sprintf("%.1f days over %d tasks", a.Cycle.Median.Hours()/24, a.Cycle.Tasks)
	}
	f := chart.Weekly{
		Title: "Project " + r.Request.Project,
		Period: fmt.Sprintf("%s to %s (UTC days) · %s · generated %s",
			r.Request.Period.From, r.Request.Period.To, describeScope(r), now.UTC().Format("2006-01-02 15:04 UTC")),
		Weeks:  make([]string, n),
		XLabel: "ISO week (UTC) and its Monday", CategoryLabel: "assignee",
		Throughput: chart.Panel{Title: fmt.Sprintf("Throughput: tasks done per week (%d in all)", a.Completed), YLabel: "tasks", Series: []chart.Series{
			{Name: "done", Color: statusColors[task.StatusDone], Values: make([]float64, n)},
		}},
		Cycle: chart.Panel{Title: "Median cycle time, first in_progress to done (in all: " + cycle + ")", YLabel: "days", Series: []chart.Series{
			{Name: "median", Color: color.RGBA{0x63, 0x66, 0xf1, 0xff}, Values: make([]float64, n)},
		}},
		Open: chart.Panel{Title: fmt.Sprintf("Open tasks now, by assignee and status (%d overdue)", a.Overdue), YLabel: "tasks"},
	}
	for i, w := range a.Weeks {
		_, wk := w.Start.ISOWeek()
		f.Weeks[i] = fmt.Sprintf("W%02d\n%s", wk, w.Start.Format("Jan 2"))
		f.Throughput.Series[0].Values[i] = float64(w.Completed)
		f.Cycle.Series[0].Values[i] = math.NaN()
		if w.Cycle.Median != nil {
			f.Cycle.Series[0].Values[i] = w.Cycle.Median.Hours() / 24
		}
	}
	// The named assignees, then one bar for the rest (those past
	// chartAssignees and those the analytics summed already).
	bars := a.Open[:min(len(a.Open), chartAssignees)]
	others := a.Others
	others.ByStatus = map[task.Status]int64{}
	for st, v := range a.Others.ByStatus {
		others.ByStatus[st] = v
	}
	for _, o := range a.Open[len(bars):] {
		others.Total += o.Total
		for st, v := range o.ByStatus {
			others.ByStatus[st] += v
		}
	}
	for _, o := range bars {
		name := o.Assignee
		if name == "" {
			name = "unassigned"
		}
		if len([]rune(name)) > 14 {
			name = string([]rune(name)[:13]) + "…"
		}
		f.Categories = append(f.Categories, name)
	}
	if others.Total > 0 {
		f.Categories = append(f.Categories, "others")
		bars = append(bars[:len(bars):len(bars)], others)
	}
	for _, st := range openOrder {
		s := chart.Series{Name: string(st), Color: statusColors[st], Values: make([]float64, len(bars))}
		for i, o := range bars {
			s.Values[i] = float64(o.ByStatus[st])
		}
		f.Open.Series = append(f.Open.Series, s)
	}
	return f
}

// openOrder stacks open work as the cumulative flow does: blocked at the
// bottom, waiting work on top.
var openOrder = []task.Status{task.StatusBlocked, task.StatusInProgress, task.StatusTodo}

// Analytics draws the charts of project analytics a of report r, made at
// now, into out as format: svg or png.
func Analytics(out io.Writer, format report.Format, r report.Report, a task.Analytics, now time.Time) error {
	f := analyticsFigure(r, a, now)
	if format == report.FormatSVG {
		return f.SVG(out)
	}
	return f.PNG(out)
}
