package notify

import (
	"fmt"
	"strings"
	"time"

	"github.com/taskfn/taskfn/shared/events"
)

// digestBody writes a digest notice's text: its open tasks, then what its
// projects completed last week, each as the event bounded them.
func digestBody(b *strings.Builder, n Notice) {
	loc, err := time.LoadLocation(fmt.Sprint(n.Detail["time_zone"]))
	if err != nil {
		loc = time.UTC
	}
	fmt.Fprintf(b, "Open tasks you own or are assigned: %d, %d of them overdue.\n", n.Detail["open"], n.Detail["overdue"])
	tasks, _ := n.Detail["open_tasks"].([]events.DigestTask)
	for _, t := range tasks {
		mark := ""
		if t.Overdue {
			mark = "[overdue] "
		}
		due := ""
		if t.DueAt != nil {
			due = ", due " + t.DueAt.In(loc).Format("Mon 2 Jan 15:04 MST")
		}
		fmt.Fprintf(b, "- %s“%s” (%s, %s%s)\n", mark, t.Title, t.Project, statusText(t.Status), due)
	}
	if open, _ := n.Detail["open"].(int64); open > int64(len(tasks)) {
		fmt.Fprintf(b, "… and %d more.\n", open-int64(len(tasks)))
	}
	from, _ := n.Detail["from"].(time.Time)
	to, _ := n.Detail["to"].(time.Time)
	fmt.Fprintf(b, "\nCompleted in your projects last week (%s to %s): %d.\n",
		from.In(loc).Format("Mon 2 Jan"), to.In(loc).AddDate(0, 0, -1).Format("Mon 2 Jan"), n.Detail["completed"])
	projects, _ := n.Detail["completed_by_project"].([]events.DigestProject)
	for _, p := range projects {
		titles := make([]string, len(p.Titles))
		for i, t := range p.Titles {
			titles[i] = "“" + t + "”"
		}
		fmt.Fprintf(b, "- %s: %d (%s)\n", p.Project, p.Count, strings.Join(titles, ", "))
	}
	if n.Chart != nil {
		b.WriteString("\nThe chart: your open tasks by status at the end of each day, and those created and completed.\n")
	}
}
