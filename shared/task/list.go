package task

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/field"
)

// ListQuery selects and orders a page of tasks. Filters combine with AND.
type ListQuery struct {
	// Only, if set, keeps only the tasks the caller may see (ScopeOf);
	// nil lists every task.
	Only *Scope
	// Project keeps the tasks of this project.
	Project    string
	Statuses   []Status // empty: any status
	OwnerID    string
	AssigneeID string
	// Parent keeps the subtasks of this task (subtask_of it).
	Parent *uuid.UUID
	// Archived lists the archived tasks instead of the others; trashed
	// tasks are never listed (see ListTrash).
	Archived  bool
	Label     string     // the task's labels contain it
	DueBefore *time.Time // due_at < DueBefore
	DueAfter  *time.Time // due_at >= DueAfter
	// Query is full-text search over title and description, in
	// websearch syntax ("quoted phrase", -excluded, or).
	Query string
	// FieldQueries are the custom field filters as the query string
	// names them; the route resolves them into Fields against Project's
	// definitions (ResolveFieldFilters). List reads only Fields.
	FieldQueries []FieldQuery
	// Fields are custom field filters by definition id.
	Fields []FieldFilter
	// Definitions are Project's live custom field definitions, when the
	// caller has read them (to resolve FieldQueries): List shows the
	// page's values by name with them rather than reading them again.
	Definitions field.Set
	// Ascending lists oldest first; the default is newest first.
	Ascending bool
	Limit     int     // 1..MaxListLimit, validated by the caller
	After     *Cursor // resume strictly after this position

	// sizes are Project's live tasks by status, each counted up to
	// sizeCap (Store.statusSizes), for a page filtered by custom fields;
	// nil counts every status as big (fieldPageSQL).
	sizes map[Status]int
}

// Page is one page of a list. Next is nil on the last page.
type Page struct {
	Items []Task
	Next  *Cursor

	buf *[]Task // Items' backing array, from pages
}

// Release hands the page's memory back for a later List; p.Items must not
// be used after. Optional: a page never released is only garbage. A list
// route releases each page once written, which takes its largest
// allocation (50 tasks, ~12 kB) off the garbage collector's count.
func (p *Page) Release() {
	if p.buf == nil {
		p.Items = nil
		return
	}
	items := (*p.buf)[:cap(*p.buf)]
	clear(items) // let the rows' strings go
	*p.buf = items[:0]
	pages.Put(p.buf)
	p.Items, p.buf = nil, nil
}

var pages = sync.Pool{New: func() any { return new([]Task) }}

// MaxListLimit is the largest page List serves.
const MaxListLimit = 200

// List returns the tasks matching q in (created_at, id) order, read from
// the replica. Its query is built so that every common filter is served by
// ordered index scans; see listSQL.
func (s *Store) List(ctx context.Context, q ListQuery) (Page, error) {
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return Page{}, fmt.Errorf("task: list: limit %d not in 1..%d", q.Limit, MaxListLimit)
	}
	if q.After != nil && q.After.Ascending != q.Ascending {
		return Page{}, fmt.Errorf("%w: it was made for the other sort order", ErrBadCursor)
	}
	if gatedFieldPage(q) {
		sizes, err := s.statusSizes(ctx, q.Project)
		if err != nil {
			return Page{}, err
		}
		q.sizes = sizes
	}
	sql, args, err := listSQL(q)
	if err != nil {
		return Page{}, err
	}
	if sql == "" {
		return Page{Items: []Task{}}, nil
	}
	// Under cache_statement pgx prepares each query, and PostgreSQL may
	// switch a prepared statement to a generic plan, planned once for any
	// values. That is what a list without subject or filter values wants:
	// its statuses and limit are literals (see listSQL), so the generic
	// plan is the custom one, and planning was half of PostgreSQL's time
	// for a page. One statement per status set, order and limit: clients
	// use a few limits, and pgx's statement cache evicts the rarest.
	// A member's scope is safe too (genericPlanSafe says why); one
	// statement per number of projects as well.
	// A filter value needs planning with its value: a generic plan assumes
	// an average owner, and for one with thousands of tasks it fetches
	// them all and sorts (the owner+assignee lists showed it). Those go as
	// cache_describe, an unnamed statement planned on each run, in one
	// round trip once its description is cached. The other modes already
	// do not prepare.
	if s.prepares && !q.genericPlanSafe() {
		args = append([]any{pgx.QueryExecModeCacheDescribe}, args...)
	}
	buf := pages.Get().(*[]Task)
	var items []Task
	if s.prepares && gatedFieldPage(q) {
		items, err = s.listGeneric(ctx, slices.Grow((*buf)[:0], q.Limit+1), sql, args)
	} else {
		rows, _ := s.db.Replica.Query(ctx, sql, args...)
		items, err = pgx.AppendRows(slices.Grow((*buf)[:0], q.Limit+1), rows, ScanRows())
	}
	*buf = items
	if err != nil {
		(&Page{buf: buf}).Release()
		return Page{}, fmt.Errorf("task: list: %w", err)
	}
	// listSQL fetched one row more than asked: its presence means there
	// is a next page, without a second query to count.
	var next *Cursor
	if len(items) > q.Limit {
		items = items[:q.Limit]
		last := items[len(items)-1]
		next = &Cursor{CreatedAt: last.CreatedAt, ID: last.ID, Ascending: q.Ascending}
	}
	if q.Project != "" && q.Definitions != nil {
		// Every task of the page is of Project (visibilityConds).
		for i := range items {
			items[i].Fields = presentIn(q.Definitions, items[i].StoredFields)
		}
	} else if err := s.present(ctx, s.db.Replica, items); err != nil {
		(&Page{buf: buf}).Release()
		return Page{}, err
	}
	return Page{Items: items, Next: next, buf: buf}, nil
}

// listGeneric runs a gated field page (fieldPageSQL) with its generic
// plan, appending its rows to items. PostgreSQL would plan it on every
// run: its generic plan is costed with the GIN arm's rows for an average
// project, which the gate never runs when the walk serves, so it always
// loses to a custom plan; yet the two are the same plan, and planning a
// custom one was three quarters of the query's time (0.5–0.9 ms of 0.7–1.1
// on 10,000,000 tasks, BENCHMARKS.md). So the statement is run with
// plan_cache_mode forced, set and reset around it in one round trip: the
// three are one implicit transaction, so an error, which rolls it back,
// undoes the SET as well, and behind PgBouncer the session keeps nothing.
func (s *Store) listGeneric(ctx context.Context, items []Task, sql string, args []any) ([]Task, error) {
	b := &pgx.Batch{}
	b.Queue("SET plan_cache_mode = force_generic_plan")
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		var err error
		items, err = pgx.AppendRows(items, rows, ScanRows())
		return err
	})
	b.Queue("RESET plan_cache_mode")
	// Close runs the callback: items is read after it, not before.
	err := s.db.Replica.SendBatch(ctx, b).Close()
	return items, err
}

// genericPlanSafe reports whether q's query plans the same whatever its
// values: nothing but statuses and limit (literals), the order, a cursor,
// and the projects and assignee of a scope or a project filter. Each of
// those branches fixes project (or assignee) and status by equality on an
// index ending in (created_at, id), whose ordered scan is the best plan
// for a project of ten tasks or of a million: planned once, generically,
// it is what a custom plan would be, and planning a member's 20 branches
// was three quarters of PostgreSQL's time for the page (make bench). A
// filter value is another matter: with owner_id or label as well, the
// best plan depends on how common the value is. A custom field equality
// is safe too: fieldPageSQL's branches are either bounded by a window of
// rows whatever the plan, or choose their plan themselves when they run.
func (q ListQuery) genericPlanSafe() bool {
	return q.OwnerID == "" && q.AssigneeID == "" && q.Label == "" && q.Parent == nil &&
		q.DueBefore == nil && q.DueAfter == nil && q.Query == "" && (len(q.Fields) == 0 || gatedFieldPage(q)) && !q.manyProjects()
}

// maxProjectBranches bounds a list's project branches: a caller who sees
// more projects is served by one branch over all of them (see
// visibilityConds).
const maxProjectBranches = 64

func (q ListQuery) manyProjects() bool {
	return q.Only != nil && q.Project == "" && len(q.Only.Projects) > maxProjectBranches
}

// listSQL builds the list query and its arguments. Values travel as
// placeholders, but for statuses and the limit: statuses are a closed set,
// checked here, and written as literals so the planner can match each to
// its partial index (tasks_<status>_created_at_id_idx) even in a generic
// plan; the limit is an int, written so a generic plan is costed for it. It returns ""
// when the filters contradict visibility, so nothing can match.
//
// An OR (owned or assigned) or an IN (several statuses) would make
// PostgreSQL collect every match and sort it. Instead the query is a UNION
// ALL of branches that each fix status, owner or assignee by equality, one
// per status × {owned, assigned and not owned} (the second excludes
// self-assigned tasks, which the first already has). Each branch is then an
// ordered scan of an index ending in (created_at, id), and the outer ORDER
// BY ... LIMIT becomes a Merge Append that reads only about Limit rows in
// all. When owner, assignee or visibility is fixed but status is not, the
// branches cover every status, so the (owner_id|assignee_id, status,
// created_at, id) indexes serve that too. The keyset condition goes into
// each branch so every scan starts at the cursor.
//
// Each branch carries its own ORDER BY and LIMIT (the page's first Limit+1
// rows are among each branch's first Limit+1): PostgreSQL cannot flatten a
// UNION ALL member that has a WHERE clause into the outer query, so it
// plans each as a separate subquery, which without an order and limit of
// its own is planned to return all its rows unordered, then sorted.
//
// Full-text search is the exception: a GIN index has no order, so for a
// selective term the matches are sorted (top-N) after the index finds them.
func listSQL(q ListQuery) (string, []any, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}

	// Conditions every branch shares; each value is bound once and its
	// placeholder repeated.
	archived := liveOnly
	if q.Archived {
		archived = archivedOnly
	}
	common := filters{q.OwnerID, q.AssigneeID, q.Label, q.DueBefore, q.DueAfter, q.Query, q.Parent, archived}.conds(arg)
	fields := fieldConds(q.Fields, arg)
	cmp, dir := "<", "DESC"
	if q.Ascending {
		cmp, dir = ">", "ASC"
	}
	if q.After != nil {
		common = append(common, "(created_at, id) "+cmp+" ("+arg(q.After.CreatedAt)+", "+arg(q.After.ID)+")")
	}
	visibility := visibilityConds(q, arg)
	if len(visibility) == 0 {
		return "", nil, nil
	}
	branches, err := branchStatuses(q)
	if err != nil {
		return "", nil, err
	}
	statuses := statusConds(branches)

	order := "ORDER BY created_at " + dir + ", id " + dir
	// A literal too: with LIMIT as a parameter, PostgreSQL costs a generic
	// plan for a tenth of the matching rows, so it never prefers it to a
	// custom plan and plans every run (see List). The limit is an int
	// checked by List.
	limit := strconv.Itoa(q.Limit + 1)
	if gatedFieldPage(q) {
		return fieldPageSQL(visibility, statuses, q.bigStatuses(branches), common, fields, arg(q.Project), order, q.Limit+1), args, nil
	}
	return mergeSQL(visibility, statuses, append(common, fields...), order, limit), args, nil
}

// visibilityConds returns the conditions of each visibility branch: one
// branch with none (or the project filter's) for all tasks; else one per
// visible project, each fixing project by equality so it is an ordered
// scan of tasks_project_status_created_at_id_idx, and one for the tasks
// assigned to the caller outside them. A branch the filters contradict is
// left out rather than sent for the planner to prove empty; none left
// means nothing can match.
func visibilityConds(q ListQuery, arg func(any) string) [][]string {
	if q.Only == nil {
		if q.Project != "" {
			return [][]string{{"project = " + arg(q.Project)}}
		}
		return [][]string{nil}
	}
	projects := q.Only.Projects
	if q.Project != "" {
		projects = nil
		if slices.Contains(q.Only.Projects, q.Project) {
			projects = []string{q.Project}
		}
	}
	var visibility [][]string
	if q.manyProjects() {
		// Past maxProjectBranches, planning a branch each costs more than
		// it saves: one branch, whose status branches walk the
		// tasks_<status>_created_at_id_idx order and keep the caller's
		// projects, which for someone in that many projects is a fair share
		// of the rows.
		visibility = append(visibility, []string{"project = ANY(" + arg(projects) + ")"})
	} else {
		for _, k := range projects {
			visibility = append(visibility, []string{"project = " + arg(k)})
		}
	}
	a := q.Only.Assignee
	if a == "" || (q.AssigneeID != "" && q.AssigneeID != a) || len(projects) == 1 && q.Project != "" {
		return visibility
	}
	assignedConds := []string{"assignee_id = " + arg(a)}
	switch {
	case q.Project != "":
		assignedConds = append(assignedConds, "project = "+arg(q.Project))
	case len(projects) > 0:
		assignedConds = append(assignedConds, "project <> ALL("+arg(projects)+")")
	}
	return append(visibility, assignedConds)
}

// branchStatuses returns the status of each status branch, nil for one
// branch of any status. A duplicate would return its rows twice, so each
// status is taken once, in one order (fewer distinct statements to
// prepare). With no status asked but an owner, assignee or visibility
// fixed, they cover every status so those branches also lead with equality
// columns.
func branchStatuses(q ListQuery) ([]Status, error) {
	for _, st := range q.Statuses {
		if !st.Valid() {
			return nil, fmt.Errorf("task: list: unknown status %q", st)
		}
	}
	var statuses []Status
	for _, st := range Statuses {
		if slices.Contains(q.Statuses, st) {
			statuses = append(statuses, st)
		}
	}
	if len(statuses) == 0 && (q.Only != nil || q.Project != "" || q.OwnerID != "" || q.AssigneeID != "") {
		statuses = Statuses
	}
	return statuses, nil
}

// statusConds returns the condition of each status branch, "" for one
// branch of any status.
func statusConds(statuses []Status) []string {
	if len(statuses) == 0 {
		return []string{""}
	}
	conds := make([]string, 0, len(statuses))
	for _, st := range statuses {
		// A literal: st is one of the Statuses constants.
		conds = append(conds, "status = '"+string(st)+"'")
	}
	return conds
}

// mergeSQL is the list query: for each visibility branch × status, the
// tasks matching them and common, in order and limited, parenthesized in
// a UNION ALL whose rows are ordered and limited again; or the one branch
// alone when there is nothing to merge. Written into one builder: a
// member's 21 branches cost 223 allocations and 28 kB a page built from
// joined pieces.
func mergeSQL(visibility [][]string, statuses, common []string, order, limit string) string {
	n := len(visibility) * len(statuses)
	var b strings.Builder
	b.Grow(n*(len(Columns)+200) + len(Columns) + 100)
	multi := n > 1
	if multi {
		b.WriteString("SELECT " + Columns + "\nFROM (\n")
	}
	first := true
	for _, vis := range visibility {
		for _, sc := range statuses {
			if !first {
				b.WriteString("\nUNION ALL\n")
			}
			first = false
			if multi {
				b.WriteByte('(')
			}
			b.WriteString("SELECT " + Columns + "\nFROM tasks")
			writeWhere(&b, vis, []string{sc}, common)
			b.WriteString("\n")
			b.WriteString(order)
			b.WriteString("\nLIMIT ")
			b.WriteString(limit)
			if multi {
				b.WriteByte(')')
			}
		}
	}
	if multi {
		b.WriteString("\n) AS t\n")
		b.WriteString(order)
		b.WriteString("\nLIMIT ")
		b.WriteString(limit)
	}
	return b.String()
}

// writeWhere writes the conditions of conds, ANDed, as a WHERE clause
// (nothing when there are none); an empty condition is none.
func writeWhere(b *strings.Builder, conds ...[]string) {
	sep := "\nWHERE "
	for _, cs := range conds {
		for _, c := range cs {
			if c == "" {
				continue
			}
			b.WriteString(sep)
			b.WriteString(c)
			sep = "\n  AND "
		}
	}
}

// filters are the conditions a list and an export share beyond visibility
// and status (which a list turns into index-ordered branches): one place
// renders their SQL, so the two can never filter differently.
type filters struct {
	ownerID, assigneeID, label string
	dueBefore, dueAfter        *time.Time
	query                      string
	parent                     *uuid.UUID
	archived                   archivedFilter
}

// archivedFilter says which of the tasks not in the trash a query wants.
type archivedFilter int

const (
	liveOnly        archivedFilter = iota // the lists' default
	archivedOnly                          // GET /tasks?archived=true
	liveAndArchived                       // exports and reports: archived work is history
)

// conds renders f's conditions; arg binds a value and returns its
// placeholder. The trash and archive conditions are literals, first, as
// the partial indexes of migration 17 state them, so every plan, generic
// ones too, can use those indexes.
func (f filters) conds(arg func(any) string) []string {
	c := []string{"deleted_at IS NULL"}
	switch f.archived {
	case liveOnly:
		c = append(c, "archived_at IS NULL")
	case archivedOnly:
		c = append(c, "archived_at IS NOT NULL")
	}
	if f.ownerID != "" {
		c = append(c, "owner_id = "+arg(f.ownerID))
	}
	if f.assigneeID != "" {
		c = append(c, "assignee_id = "+arg(f.assigneeID))
	}
	if f.label != "" {
		c = append(c, "labels @> ARRAY["+arg(f.label)+"]")
	}
	if f.dueBefore != nil {
		c = append(c, "due_at < "+arg(*f.dueBefore))
	}
	if f.dueAfter != nil {
		c = append(c, "due_at >= "+arg(*f.dueAfter))
	}
	if f.query != "" {
		c = append(c, "search @@ websearch_to_tsquery('english', "+arg(f.query)+")")
	}
	if f.parent != nil {
		// A parent's subtasks are few: the planner finds them by
		// task_relations_other_id_kind_idx and the task by its key, then
		// sorts them, whatever else the branch fixes.
		c = append(c, "id IN (SELECT task_id FROM task_relations WHERE other_id = "+arg(f.parent.String())+"::uuid AND kind = 'subtask_of')")
	}
	return c
}
