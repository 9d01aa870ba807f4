package digestsend

import (
	"fmt"
	"image/color"
	"time"

	"github.com/taskfn/taskfn/shared/chart"
	"github.com/taskfn/taskfn/shared/task"
)

// The open statuses, stacked bottom first, in the report charts' colors.
var openStatuses = []struct {
	status task.Status
	color  color.Color
}{
	{task.StatusBlocked, color.RGBA{0xef, 0x44, 0x44, 0xff}},
	{task.StatusInProgress, color.RGBA{0x3b, 0x82, 0xf6, 0xff}},
	{task.StatusTodo, color.RGBA{0xfa, 0xcc, 0x15, 0xff}},
}

// figure is a digest's chart of summary s (seven UTC days): the open
// tasks by status at the end of each day above the tasks created and
// completed each day.
func figure(s task.Summary, week string) chart.Figure {
	n := len(s.Days)
	f := chart.Figure{
		Title:   "Your week before " + week,
		Period:  fmt.Sprintf("%s to %s (UTC days) · your projects' tasks and those assigned to you", s.Days[0].Date.Format(time.DateOnly), s.Days[n-1].Date.Format(time.DateOnly)),
		Days:    make([]time.Time, n),
		Stacked: chart.Panel{Title: "Open tasks by status at the end of each day", YLabel: "tasks"},
		Bars: chart.Panel{Title: "Created and completed per day", YLabel: "tasks", Series: []chart.Series{
			{Name: "created", Color: color.RGBA{0x63, 0x66, 0xf1, 0xff}, Values: make([]float64, n)},
			{Name: "completed", Color: color.RGBA{0x22, 0xc5, 0x5e, 0xff}, Values: make([]float64, n)},
		}},
	}
	for _, st := range openStatuses {
		f.Stacked.Series = append(f.Stacked.Series, chart.Series{Name: string(st.status), Color: st.color, Values: make([]float64, n)})
	}
	for i, d := range s.Days {
		f.Days[i] = d.Date
		for j, st := range openStatuses {
			f.Stacked.Series[j].Values[i] = float64(d.ByStatus[st.status])
		}
		f.Bars.Series[0].Values[i] = float64(d.Created)
		f.Bars.Series[1].Values[i] = float64(d.Completed)
	}
	return f
}
