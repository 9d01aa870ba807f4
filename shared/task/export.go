package task

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/pg"
)

// ExportQuery selects the tasks a report covers: the list filters, and the
// requester's visibility. Filters combine with AND.
type ExportQuery struct {
	// Only, if set, keeps only the tasks the requester may see (ScopeOf);
	// nil selects every task.
	Only *Scope
	// Project keeps the tasks of this project.
	Project    string
	Statuses   []Status // empty: any status
	OwnerID    string
	AssigneeID string
	Label      string
	DueBefore  *time.Time // due_at < DueBefore
	DueAfter   *time.Time // due_at >= DueAfter
	Query      string     // full-text search, websearch syntax
}

// ExportOptions tunes Export and Summarize.
type ExportOptions struct {
	// Timeout replaces the statement timeout for these queries: an export
	// streams for as long as its consumer takes, far beyond what an API
	// query may. Zero keeps the connection's.
	Timeout time.Duration
	// Total, if set, is called before the first row with the number of
	// rows the export will give, counted in the same snapshot.
	Total func(n int64) error
	// Limit, if positive, is the most rows Export gives and counts for
	// Total: both queries stop there (LIMIT), so a selection far larger
	// than the caller will take costs no more than the limit. Ask for one
	// more than you accept to tell "exactly the limit" from "over it".
	Limit int64
	// StatusPerDay makes Summarize also count each day's tasks by the
	// status they had at its end (DayCount.ByStatus), from their history:
	// a cumulative-flow chart's data.
	StatusPerDay bool
}

// where renders q's conditions (never empty) and their arguments; values
// only ever travel as placeholders, numbered after those already in args.
func (q ExportQuery) where(args []any) (string, []any) {
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := []string{"true"}
	if q.Only != nil {
		vis := []string{"project = ANY(" + arg(nonNilKeys(q.Only.Projects)) + ")"}
		if q.Only.Assignee != "" {
			vis = append(vis, "assignee_id = "+arg(q.Only.Assignee))
		}
		conds = append(conds, "("+strings.Join(vis, " OR ")+")")
	}
	if q.Project != "" {
		conds = append(conds, "project = "+arg(q.Project))
	}
	if len(q.Statuses) > 0 {
		st := make([]string, len(q.Statuses))
		for i, s := range q.Statuses {
			st[i] = string(s)
		}
		conds = append(conds, "status = ANY("+arg(st)+")")
	}
	conds = append(conds, filters{q.OwnerID, q.AssigneeID, q.Label, q.DueBefore, q.DueAfter, q.Query, nil, liveAndArchived}.conds(arg)...)
	return strings.Join(conds, "\n  AND "), args
}

// ExportFields are the custom fields an export of q has a column for:
// the definitions of its project, or for an export of several projects
// the union of their names (the first project's, in key order, giving a
// name's type and place; a select's options those of every project's
// field of that name), in definition position order.
func (s *Store) ExportFields(ctx context.Context, q ExportQuery) ([]field.Definition, error) {
	keys, sets, err := exportSets(ctx, s.db.Replica, q)
	if err != nil || len(keys) == 0 {
		return nil, err
	}
	var out []field.Definition
	at := map[string]int{} // a name's column in out
	for _, k := range keys {
		for _, d := range sets[k] {
			n := strings.ToLower(d.Name)
			i, ok := at[n]
			if !ok {
				at[n] = len(out)
				d.Options = slices.Clone(d.Options)
				out = append(out, d)
				continue
			}
			// Another project's field of the same name: its options join
			// the column's, so its tasks' option ids show as names too
			// (ids are random, never shared by two projects' options).
			if out[i].Type.HasOptions() && d.Type.HasOptions() {
				out[i].Options = append(out[i].Options, d.Options...)
			}
		}
	}
	slices.SortStableFunc(out, func(a, b field.Definition) int { return cmp.Compare(a.Position, b.Position) })
	return out, nil
}

// exportSets are the live definitions of the projects an export of q
// reads, through q (the export's own snapshot, or a pool outside one), and
// those projects' keys in order: its project, its scope's, or for an
// export of everything every project with a definition.
func exportSets(ctx context.Context, db field.Querier, q ExportQuery) ([]string, map[string]field.Set, error) {
	var keys []string
	switch {
	case q.Project != "":
		keys = []string{q.Project}
	case q.Only != nil:
		keys = slices.Clone(q.Only.Projects)
	default:
		const all = `SELECT DISTINCT project FROM custom_fields WHERE deleted_at IS NULL`
		rows, _ := db.Query(ctx, all)
		var err error
		if keys, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, nil, fmt.Errorf("task: export fields: %w", err)
		}
	}
	if len(keys) == 0 {
		return nil, nil, nil
	}
	slices.Sort(keys)
	sets, err := field.LoadMany(ctx, db, keys)
	if err != nil {
		return nil, nil, err
	}
	return keys, sets, nil
}

// nonNilKeys: pgx sends a nil slice as NULL, and ANY(NULL) is NULL, not false.
func nonNilKeys(k []string) []string {
	if k == nil {
		return []string{}
	}
	return k
}

// Export calls each for every task matching q, oldest first, in one
// snapshot of the replica. Rows are read as they arrive from one query
// (pgx decodes a row at a time, and the server waits while each runs), so
// memory stays the same for ten rows or ten million. each gets the same
// *Task every time, overwritten with the next row: it must not keep it.
// An error from each or Total stops the export and is returned as is.
func (s *Store) Export(ctx context.Context, q ExportQuery, opts ExportOptions, each func(*Task) error) error {
	return s.snapshot(ctx, opts.Timeout, func(tx pgx.Tx) error {
		where, args := q.where(nil)
		limit := ""
		if opts.Limit > 0 {
			args = append(args, opts.Limit)
			limit = "\nLIMIT $" + strconv.Itoa(len(args))
		}
		if opts.Total != nil {
			var n int64
			count := `
SELECT count(*)
FROM (
  SELECT
  FROM tasks
  WHERE ` + where + limit + `
) AS selected`
			if err := tx.QueryRow(ctx, count, s.mode(args)...).Scan(&n); err != nil {
				return fmt.Errorf("task: export: count: %w", err)
			}
			if err := opts.Total(n); err != nil {
				return err
			}
		}
		sql := `
SELECT ` + Columns + `
FROM tasks
WHERE ` + where + `
ORDER BY created_at, id` + limit
		// The definitions first, in the same snapshot: while the rows
		// stream, the connection takes no other query.
		_, sets, err := exportSets(ctx, tx, q)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, s.mode(args)...)
		if err != nil {
			return fmt.Errorf("task: export: %w", err)
		}
		defer rows.Close()
		scan := ScanRows()
		for rows.Next() {
			t, err := scan(rows)
			if err != nil {
				return fmt.Errorf("task: export: %w", err)
			}
			if len(t.StoredFields) > 0 {
				t.Fields = presentIn(sets[t.Project], t.StoredFields)
			}
			if err := each(&t); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("task: export: %w", err)
		}
		return nil
	})
}

// Summary is the status summary of the tasks an ExportQuery selects.
type Summary struct {
	Total      int64
	ByStatus   map[Status]int64
	ByPriority map[Priority]int64
	// ByStatusPriority counts every (status, priority) pair, zeros included.
	ByStatusPriority map[Status]map[Priority]int64
	// ByProject counts each project's tasks by status, every status of a
	// project with a task listed; projects with none are left out.
	ByProject map[string]map[Status]int64
	// Overdue counts tasks past their due time and neither done nor
	// cancelled.
	Overdue int64
	// Days has one entry per UTC day of the period, in order.
	Days []DayCount
}

// DayCount is what happened on one UTC day.
type DayCount struct {
	Date      time.Time // midnight UTC
	Created   int64
	Completed int64 // tasks that became done that day and are done still
	// ByStatus counts the tasks that existed at the end of the day by the
	// status they had then (ExportOptions.StatusPerDay; nil otherwise).
	ByStatus map[Status]int64
}

// MaxSummaryDays bounds a summary's period.
const MaxSummaryDays = 366

// Summarize counts the tasks q selects by status and priority, those
// overdue at now, and those created and completed on each UTC day from
// from up to, not including, to (both midnight UTC), in one snapshot of
// the replica.
func (s *Store) Summarize(ctx context.Context, q ExportQuery, from, to, now time.Time, opts ExportOptions) (Summary, error) {
	from, to = from.UTC(), to.UTC()
	if !from.Equal(from.Truncate(24*time.Hour)) || !to.Equal(to.Truncate(24*time.Hour)) || !from.Before(to) ||
		to.Sub(from) > MaxSummaryDays*24*time.Hour {
		return Summary{}, fmt.Errorf("task: summarize: period %s..%s must be whole UTC days, at most %d", from, to, MaxSummaryDays)
	}
	sum := emptySummary(from, to)
	err := s.snapshot(ctx, opts.Timeout, func(tx pgx.Tx) error {
		if err := s.countByStatusPriority(ctx, tx, q, now, &sum); err != nil {
			return err
		}
		if opts.StatusPerDay {
			if err := s.countStatusByDay(ctx, tx, q, from, to, sum.Days); err != nil {
				return err
			}
		}
		return s.countByDay(ctx, tx, q, from, to, sum.Days)
	})
	if err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// emptySummary is the summary of no tasks over from..to: every status,
// priority and pair counted zero, and one day for each UTC day.
func emptySummary(from, to time.Time) Summary {
	sum := Summary{
		ByStatus:         map[Status]int64{},
		ByPriority:       map[Priority]int64{},
		ByStatusPriority: map[Status]map[Priority]int64{},
		ByProject:        map[string]map[Status]int64{},
	}
	for _, st := range Statuses {
		sum.ByStatus[st] = 0
		sum.ByStatusPriority[st] = map[Priority]int64{}
		for _, p := range Priorities {
			sum.ByStatusPriority[st][p] = 0
		}
	}
	for _, p := range Priorities {
		sum.ByPriority[p] = 0
	}
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		sum.Days = append(sum.Days, DayCount{Date: d})
	}
	return sum
}

// countByStatusPriority adds to sum the tasks q selects by status and
// priority, and those overdue at now, in tx.
func (s *Store) countByStatusPriority(ctx context.Context, tx pgx.Tx, q ExportQuery, now time.Time, sum *Summary) error {
	where, args := q.where([]any{now})
	counts := `
SELECT project,
       status,
       priority,
       count(*),
       count(*) FILTER (WHERE due_at < $1 AND status NOT IN ('done', 'cancelled'))
FROM tasks
WHERE ` + where + `
GROUP BY project, status, priority`
	rows, _ := tx.Query(ctx, counts, s.mode(args)...)
	var (
		key     string
		st      Status
		pr      Priority
		n, late int64
	)
	_, err := pgx.ForEachRow(rows, []any{&key, &st, &pr, &n, &late}, func() error {
		if sum.ByProject[key] == nil {
			sum.ByProject[key] = make(map[Status]int64, len(Statuses))
			for _, s := range Statuses {
				sum.ByProject[key][s] = 0
			}
		}
		sum.ByProject[key][st] += n
		sum.Total += n
		sum.ByStatus[st] += n
		sum.ByPriority[pr] += n
		sum.ByStatusPriority[st][pr] += n
		sum.Overdue += late
		return nil
	})
	if err != nil {
		return fmt.Errorf("task: summarize: %w", err)
	}
	return nil
}

// countByDay sets on days, one per UTC day from from up to to, the tasks
// q selects created and completed on each, by the UTC date of created_at
// and of completed_at, in tx.
func (s *Store) countByDay(ctx context.Context, tx pgx.Tx, q ExportQuery, from, to time.Time, days []DayCount) error {
	byDate := make(map[time.Time]*DayCount, len(days))
	for i := range days {
		byDate[days[i].Date] = &days[i]
	}
	where, args := q.where([]any{from, to})
	for _, c := range []struct {
		column string // a constant, never input
		set    func(*DayCount, int64)
	}{
		{"created_at", func(d *DayCount, n int64) { d.Created = n }},
		{"completed_at", func(d *DayCount, n int64) { d.Completed = n }},
	} {
		perDay := `
SELECT (` + c.column + ` AT TIME ZONE 'UTC')::date,
       count(*)
FROM tasks
WHERE ` + where + `
  AND ` + c.column + ` >= $1
  AND ` + c.column + ` < $2
GROUP BY 1`
		rows, _ := tx.Query(ctx, perDay, s.mode(args)...)
		var (
			day time.Time
			n   int64
		)
		_, err := pgx.ForEachRow(rows, []any{&day, &n}, func() error {
			d, ok := byDate[time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)]
			if !ok {
				return fmt.Errorf("day %s is outside the period", day)
			}
			c.set(d, n)
			return nil
		})
		if err != nil {
			return fmt.Errorf("task: summarize: %w", err)
		}
	}
	return nil
}

// countStatusByDay sets on days, one per UTC day from from up to to, the
// tasks q selects by the status each had at the end of the day, in tx.
//
// A task's history (task_activity, written with every change) holds its
// status changes with old and new values; with created_at they cut its
// life into spans of one status: from creation to the first change (the
// status that change left, so a task whose history began before the
// history did starts right), then from each change to the next. A span
// adds one to its status from the day it began (or the period's first) and
// takes it away on the day it ended: the database sums these per status
// and day (at most 5 × 366 rows whatever the number of tasks) and the
// running sum over the days here gives the counts. The selection is by
// the tasks' present state, as the rest of the summary's.
func (s *Store) countStatusByDay(ctx context.Context, tx pgx.Tx, q ExportQuery, from, to time.Time, days []DayCount) error {
	where, args := q.where([]any{from, to})
	flow := `
WITH selected AS (
  SELECT id, created_at, status
  FROM tasks
  WHERE ` + where + `
    AND created_at < $2
),
changes AS (
  SELECT a.task_id,
         a.at,
         c->>'old' AS old,
         c->>'new' AS new,
         row_number() OVER w AS n,
         lead(a.at) OVER w AS next_at
  FROM selected
  JOIN task_activity AS a ON a.task_id = selected.id
  CROSS JOIN LATERAL jsonb_array_elements(a.changes) AS c
  WHERE c->>'field' = 'status'
    AND c->>'old' IS NOT NULL
  WINDOW w AS (PARTITION BY a.task_id ORDER BY a.at, a.id)
),
spans AS (
  SELECT new AS status, at AS since, next_at AS until
  FROM changes
  UNION ALL
  SELECT coalesce(first.old, selected.status), selected.created_at, first.at
  FROM selected
  LEFT JOIN changes AS first ON first.task_id = selected.id AND first.n = 1
),
steps AS (
  SELECT status, (greatest(since, $1) AT TIME ZONE 'UTC')::date AS day, 1 AS step
  FROM spans
  WHERE since < $2
    AND (until IS NULL OR until > $1)
  UNION ALL
  SELECT status, (until AT TIME ZONE 'UTC')::date, -1
  FROM spans
  WHERE since < $2
    AND until > $1
    AND until < $2
)
SELECT status, day, sum(step)
FROM steps
GROUP BY status, day`
	rows, _ := tx.Query(ctx, flow, s.mode(args)...)
	steps := make(map[time.Time]map[Status]int64, len(days))
	var (
		st  Status
		day time.Time
		n   int64
	)
	_, err := pgx.ForEachRow(rows, []any{&st, &day, &n}, func() error {
		d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
		if steps[d] == nil {
			steps[d] = map[Status]int64{}
		}
		steps[d][st] += n
		return nil
	})
	if err != nil {
		return fmt.Errorf("task: summarize: status per day: %w", err)
	}
	cur := make(map[Status]int64, len(Statuses))
	for _, st := range Statuses {
		cur[st] = 0
	}
	for i := range days {
		for st, n := range steps[days[i].Date] {
			cur[st] += n
		}
		days[i].ByStatus = maps.Clone(cur)
	}
	return nil
}

// snapshot runs fn in a read-only repeatable-read transaction on the
// replica, so every query of one report sees the same data, with the
// statement timeout set to timeout for this transaction only (SET LOCAL
// also holds behind PgBouncer in transaction pooling mode).
func (s *Store) snapshot(ctx context.Context, timeout time.Duration, fn func(pgx.Tx) error) error {
	return pg.InTx(ctx, s.db.Replica, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
			return fmt.Errorf("task: snapshot: %w", err)
		}
		if timeout > 0 {
			const q = `SELECT set_config('statement_timeout', $1, true)`
			if _, err := tx.Exec(ctx, q, strconv.FormatInt(timeout.Milliseconds(), 10)); err != nil {
				return fmt.Errorf("task: snapshot: %w", err)
			}
		}
		return fn(tx)
	})
}

// mode prepends the exec mode List uses when the pool prepares: report
// queries vary with their filters like lists do.
func (s *Store) mode(args []any) []any {
	if s.prepares {
		return append([]any{pgx.QueryExecModeCacheDescribe}, args...)
	}
	return args
}
