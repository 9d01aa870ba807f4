package task

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// DigestQuery selects what a weekly digest shows one subject.
type DigestQuery struct {
	Subject string
	// Only is the subject's visibility (ScopeOf; nil: every task): an
	// open task it owns or is assigned is listed only if it may see it.
	Only *Scope
	// Projects are the subject's projects (project.Access.Visible):
	// their tasks completed in [From, To) are counted.
	Projects []string
	From, To time.Time
	Now      time.Time // overdue means due before Now
	// Open bounds the open tasks listed; Titles the completed titles per
	// project; MaxProjects the projects listed.
	Open, Titles, MaxProjects int
}

// DigestCounts is a digest's tasks, bounded by its query.
type DigestCounts struct {
	Open      []Task // the soonest due first, undated last
	OpenCount int64
	Overdue   int64
	Completed int64
	ByProject []ProjectCompleted // the most completed first
}

// ProjectCompleted is what one project completed in a digest's week.
type ProjectCompleted struct {
	Project string
	Count   int64
	Titles  []string // the latest completed first
}

// Digest counts and lists what q selects in one snapshot of the replica:
// open (neither done nor cancelled), live, unarchived tasks q.Subject owns
// or is assigned, and the tasks of q.Projects completed in [From, To).
// Every query is bounded: counts, LIMIT q.Open rows, and q.MaxProjects
// groups of q.Titles titles.
func (s *Store) Digest(ctx context.Context, q DigestQuery) (DigestCounts, error) {
	var out DigestCounts
	err := s.snapshot(ctx, 0, func(tx pgx.Tx) error {
		open := ExportQuery{Only: q.Only, Statuses: []Status{StatusTodo, StatusInProgress, StatusBlocked}}
		// Owned or assigned, live and unarchived; $1 is the subject.
		const mine = "\n  AND archived_at IS NULL\n  AND (owner_id = $1 OR assignee_id = $1)"
		where, args := open.where([]any{q.Subject, q.Now})
		where += mine
		counts := `
SELECT count(*),
       count(*) FILTER (WHERE due_at < $2)
FROM tasks
WHERE ` + where
		if err := tx.QueryRow(ctx, counts, s.mode(args)...).Scan(&out.OpenCount, &out.Overdue); err != nil {
			return fmt.Errorf("task: digest: %w", err)
		}
		where, args = open.where([]any{q.Subject})
		where += mine
		list := `
SELECT ` + Columns + `
FROM tasks
WHERE ` + where + `
ORDER BY due_at NULLS LAST, created_at, id
LIMIT ` + strconv.Itoa(q.Open)
		rows, _ := tx.Query(ctx, list, s.mode(args)...)
		tasks, err := pgx.CollectRows(rows, ScanRows())
		if err != nil {
			return fmt.Errorf("task: digest: %w", err)
		}
		out.Open = tasks

		done := ExportQuery{Only: &Scope{Projects: q.Projects}, Statuses: []Status{StatusDone}}
		where, args = done.where([]any{q.From, q.To, q.Titles, q.MaxProjects})
		byProject := `
SELECT project,
       count(*) AS n,
       (array_agg(title ORDER BY completed_at DESC, id))[1:$3],
       (sum(count(*)) OVER ())::bigint
FROM tasks
WHERE ` + where + `
  AND completed_at >= $1
  AND completed_at < $2
GROUP BY project
ORDER BY n DESC, project
LIMIT $4`
		rows, _ = tx.Query(ctx, byProject, s.mode(args)...)
		var p ProjectCompleted
		_, err = pgx.ForEachRow(rows, []any{&p.Project, &p.Count, &p.Titles, &out.Completed}, func() error {
			out.ByProject = append(out.ByProject, p)
			p = ProjectCompleted{}
			return nil
		})
		if err != nil {
			return fmt.Errorf("task: digest: completed: %w", err)
		}
		return nil
	})
	if err != nil {
		return DigestCounts{}, err
	}
	return out, nil
}
