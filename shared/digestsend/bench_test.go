package digestsend_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/project"
)

// BenchmarkTick: the time one digest costs a tick (claim, queries on a
// replica snapshot, the chart, filing it), for users each owning 30 open
// tasks, a member of a project with 200 tasks completed last week. It
// reports digests/s and the chart's size.
func BenchmarkTick(b *testing.B) {
	e := newTickEnvB(b)
	const users = 40
	for i := range users {
		s := fmt.Sprintf("b%03d", i)
		e.user(s, "weekly", "Europe/Berlin", map[string]auth.ProjectRole{"web": auth.ProjectMember})
		for j := range 30 {
			due := monday.Add(time.Duration(j-10) * 24 * time.Hour)
			e.seed(fmt.Sprintf("task %d of %s", j, s), project.PersonalKey(s), s, nil, &due, nil)
		}
	}
	for j := range 200 {
		done := monday.Add(-time.Duration(j%7+1) * 24 * time.Hour)
		e.seed(fmt.Sprintf("done %d", j), "web", "someone", nil, nil, &done)
	}
	ctx := context.Background()
	b.ResetTimer()
	sent := 0
	start := time.Now()
	for i := range b.N {
		// Each iteration is another week: every user is due again.
		res, err := e.tick(monday.Add(time.Duration(i)*7*24*time.Hour), 20).Run(ctx)
		if err != nil || res.Sent != users {
			b.Fatalf("%+v %v", res, err)
		}
		sent += res.Sent
	}
	b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "digests/s")
	var size float64
	if err := e.db.Primary.QueryRow(ctx, `SELECT avg(length(chart_png)) FROM digests`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(size, "png-bytes")
}
