package task

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Analytics is a project's throughput and cycle time over a period, and
// its open work now (a project_analytics report).
type Analytics struct {
	// Weeks has one entry per ISO week (Monday to Sunday, UTC) that
	// overlaps the period, in order; the first and last may be cut by it.
	Weeks []WeekCount
	// Completed counts the tasks done in the period (completed_at in it,
	// done still); Cycle is their cycle time.
	Completed int64
	Cycle     CycleTime
	// Open counts the tasks neither done nor cancelled by assignee
	// ("" is unassigned), the MaxAnalyticsAssignees with the most first;
	// Others sums the rest.
	Open   []OpenCount
	Others OpenCount
	// OthersAssignees is how many assignees Others sums.
	OthersAssignees int64
	// Overdue counts the open tasks past their due time.
	Overdue int64
}

// WeekCount is one ISO week of a period.
type WeekCount struct {
	Start     time.Time // the week's Monday, midnight UTC (may precede the period)
	Completed int64
	Cycle     CycleTime
}

// CycleTime is the median time from start to done of the tasks completed,
// over the Tasks of them whose history shows when work began.
type CycleTime struct {
	Tasks  int64
	Median *time.Duration // nil when Tasks is 0
}

// OpenCount is the open tasks of one assignee by status.
type OpenCount struct {
	Assignee string
	ByStatus map[Status]int64 // todo, in_progress, blocked
	Total    int64
}

// MaxAnalyticsAssignees is the most assignees Analyze names; the others
// are summed, so its answer is bounded whatever the project's size.
const MaxAnalyticsAssignees = 20

// OpenStatuses are the statuses of work not finished.
var OpenStatuses = []Status{StatusTodo, StatusInProgress, StatusBlocked}

// Analyze computes the analytics of the tasks q selects (one project's,
// as a project_analytics report asks) over the UTC days from from up to,
// not including, to, with open work and overdue counted at now, in one
// snapshot of the replica. Everything is aggregated in the database: it
// returns at most 55 week rows and 3 × (MaxAnalyticsAssignees + 1) open
// rows however many tasks there are.
func (s *Store) Analyze(ctx context.Context, q ExportQuery, from, to, now time.Time, opts ExportOptions) (Analytics, error) {
	from, to = from.UTC(), to.UTC()
	if !from.Equal(from.Truncate(24*time.Hour)) || !to.Equal(to.Truncate(24*time.Hour)) || !from.Before(to) ||
		to.Sub(from) > MaxSummaryDays*24*time.Hour {
		return Analytics{}, fmt.Errorf("task: analyze: period %s..%s must be whole UTC days, at most %d", from, to, MaxSummaryDays)
	}
	a := Analytics{Others: OpenCount{ByStatus: openZero()}}
	for w := isoWeek(from); w.Before(to); w = w.AddDate(0, 0, 7) {
		a.Weeks = append(a.Weeks, WeekCount{Start: w})
	}
	err := s.snapshot(ctx, opts.Timeout, func(tx pgx.Tx) error {
		if err := s.throughput(ctx, tx, q, from, to, &a); err != nil {
			return err
		}
		return s.openWork(ctx, tx, q, now, &a)
	})
	if err != nil {
		return Analytics{}, err
	}
	return a, nil
}

// isoWeek is the Monday (midnight UTC) of t's ISO week.
func isoWeek(t time.Time) time.Time {
	d := t.UTC().Truncate(24 * time.Hour)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

func openZero() map[Status]int64 {
	m := make(map[Status]int64, len(OpenStatuses))
	for _, st := range OpenStatuses {
		m[st] = 0
	}
	return m
}

// throughput counts the tasks completed in the period per ISO week and in
// all, with the median of their cycle times.
//
// A task's cycle time runs from the first time it was moved to (or
// created in) in_progress to its completion (completed_at, the last move to
// done): the whole time work was under way, blocked spells included,
// rather than from the last move to in_progress, which would measure only
// the final stretch of a task that bounced between in_progress and
// blocked. A task reopened after an earlier completion starts again: only
// moves to in_progress after it was last taken out of done count. Tasks
// whose history shows no start (done straight from todo, or history older
// than migration 00011) count in the throughput, not in the cycle time.
// The history is read through task_activity's (task_id, id) index, one
// task at a time, for the period's completed tasks only.
func (s *Store) throughput(ctx context.Context, tx pgx.Tx, q ExportQuery, from, to time.Time, a *Analytics) error {
	where, args := q.where([]any{from, to})
	sql := `
WITH done AS (
  SELECT id, completed_at
  FROM tasks
  WHERE ` + where + `
    AND status = 'done'
    AND completed_at >= $1
    AND completed_at < $2
),
cycles AS (
  SELECT done.completed_at,
         done.completed_at - (
           SELECT min(a.at)
           FROM task_activity AS a
           CROSS JOIN LATERAL jsonb_array_elements(a.changes) AS c
           WHERE a.task_id = done.id
             AND c->>'field' = 'status'
             AND c->>'new' = 'in_progress'
             AND a.at <= done.completed_at
             AND a.at > coalesce((
               SELECT max(r.at)
               FROM task_activity AS r
               CROSS JOIN LATERAL jsonb_array_elements(r.changes) AS rc
               WHERE r.task_id = done.id
                 AND rc->>'field' = 'status'
                 AND rc->>'old' = 'done'
                 AND r.at < done.completed_at
             ), '-infinity')
         ) AS cycle
  FROM done
)
SELECT date_trunc('week', completed_at AT TIME ZONE 'UTC'),
       count(*),
       count(cycle),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM cycle))
FROM cycles
GROUP BY GROUPING SETS ((1), ())`
	byWeek := make(map[time.Time]*WeekCount, len(a.Weeks))
	for i := range a.Weeks {
		byWeek[a.Weeks[i].Start] = &a.Weeks[i]
	}
	rows, _ := tx.Query(ctx, sql, s.mode(args)...)
	var (
		week          *time.Time
		done, started int64
		median        *float64
	)
	_, err := pgx.ForEachRow(rows, []any{&week, &done, &started, &median}, func() error {
		ct := CycleTime{Tasks: started}
		if median != nil {
			d := time.Duration(*median * float64(time.Second))
			ct.Median = &d
		}
		if week == nil { // the grand total
			a.Completed, a.Cycle = done, ct
			return nil
		}
		w, ok := byWeek[time.Date(week.Year(), week.Month(), week.Day(), 0, 0, 0, 0, time.UTC)]
		if !ok {
			return fmt.Errorf("week %s is outside the period", week)
		}
		w.Completed, w.Cycle = done, ct
		return nil
	})
	if err != nil {
		return fmt.Errorf("task: analyze: throughput: %w", err)
	}
	return nil
}

// openWork counts the open tasks by assignee and status, the
// MaxAnalyticsAssignees assignees with the most named and the rest summed
// (ranked in the database), and the overdue ones at now.
func (s *Store) openWork(ctx context.Context, tx pgx.Tx, q ExportQuery, now time.Time, a *Analytics) error {
	where, args := q.where([]any{now, MaxAnalyticsAssignees})
	sql := `
WITH open AS (
  SELECT coalesce(assignee_id, '') AS assignee,
         status,
         count(*) AS n,
         count(*) FILTER (WHERE due_at < $1) AS late
  FROM tasks
  WHERE ` + where + `
    AND status NOT IN ('done', 'cancelled')
  GROUP BY 1, 2
),
ranked AS (
  SELECT assignee,
         row_number() OVER (ORDER BY sum(n) DESC, assignee) AS rank
  FROM open
  GROUP BY assignee
)
SELECT CASE WHEN rank <= $2 THEN assignee END,
       status,
       sum(n)::bigint,
       sum(late)::bigint,
       (SELECT count(*) FROM ranked WHERE rank > $2)
FROM open
JOIN ranked USING (assignee)
GROUP BY 1, 2`
	rows, _ := tx.Query(ctx, sql, s.mode(args)...)
	named := map[string]*OpenCount{}
	var (
		assignee        *string
		st              Status
		n, late, others int64
	)
	_, err := pgx.ForEachRow(rows, []any{&assignee, &st, &n, &late, &others}, func() error {
		a.Overdue += late
		a.OthersAssignees = others
		c := &a.Others
		if assignee != nil {
			if named[*assignee] == nil {
				named[*assignee] = &OpenCount{Assignee: *assignee, ByStatus: openZero()}
			}
			c = named[*assignee]
		}
		c.ByStatus[st] += n
		c.Total += n
		return nil
	})
	if err != nil {
		return fmt.Errorf("task: analyze: open work: %w", err)
	}
	for _, c := range named {
		a.Open = append(a.Open, *c)
	}
	slices.SortFunc(a.Open, func(x, y OpenCount) int {
		return cmp.Or(cmp.Compare(y.Total, x.Total), cmp.Compare(x.Assignee, y.Assignee))
	})
	return nil
}
