package task

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/pgtest"
)

// explainRows is enough rows that PostgreSQL prefers a Seq Scan and Sort
// whenever no index can give the order.
const explainRows = 200_000

// fillForExplain loads explainRows synthetic tasks in one statement and
// runs VACUUM ANALYZE, so plans rest on real statistics and a table in
// steady state. Attributes come from two
// independent hashes of the row number, so they are spread like real data
// and do not correlate through the row number:
//   - "busy" owns 10% of tasks and is assigned another 10% (and 1% of its
//     own); "busy2" owns 10% and is assigned 9%, mostly busy's tasks;
//     the rest belongs to ~1000 users, so one of them owns ~160 tasks;
//   - statuses 20% each; labels: none, [backend], [frontend bug], [bug] or
//     [ops backend], 20% each; a due date in a 4-month window for 2 in 3;
//   - descriptions carry a word from 5000 ("ref123"), ~40 tasks each, for
//     selective full-text queries; one task a minute from 2025-01-01.
func fillForExplain(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	const q = `
INSERT INTO tasks (id, title, description, status, priority, due_at, owner_id, assignee_id, labels, created_at, updated_at)
SELECT gen_random_uuid(),
       'task ' || g || ' ' || (ARRAY['deploy', 'invoice', 'review', 'database', 'kafka', 'onboarding', 'billing', 'search'])[1 + h % 8],
       (ARRAY['fix the login page', 'write the quarterly report', 'migrate the cluster', 'call the customer'])[1 + h / 8 % 4] || ' ref' || (h / 32 % 5000),
       (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + h / 160000 % 5],
       (ARRAY['low', 'medium', 'high', 'urgent'])[1 + h / 800000 % 4],
       CASE WHEN h / 3200000 % 3 = 0 THEN NULL ELSE timestamptz '2026-01-01' + (h / 9600000 % 120) * interval '1 day' END,
       CASE h2 % 10 WHEN 0 THEN 'busy' WHEN 1 THEN 'busy2' ELSE 'user-' || (h2 / 10 % 997) END,
       CASE
         WHEN h2 % 10 = 0 AND h2 / 10 % 10 = 0 THEN 'busy'
         WHEN h2 % 10 = 0 THEN 'busy2'
         WHEN h2 % 10 = 5 THEN 'busy'
         WHEN h2 / 10 % 4 = 0 THEN NULL
         ELSE 'user-' || (h2 / 40 % 997)
       END,
       CASE h2 / 40000 % 5
         WHEN 0 THEN '{}'::text[]
         WHEN 1 THEN ARRAY['backend']
         WHEN 2 THEN ARRAY['frontend', 'bug']
         WHEN 3 THEN ARRAY['bug']
         ELSE ARRAY['ops', 'backend']
       END,
       timestamptz '2025-01-01' + g * interval '1 minute',
       timestamptz '2025-01-01' + g * interval '1 minute'
FROM generate_series(1, $1::int) AS g,
     LATERAL (SELECT hashint4(g)::bigint + 2147483648 AS h, hashint4(-g)::bigint + 2147483648 AS h2) AS hashes`
	ctx := context.Background()
	if _, err := pool.Exec(ctx, q, explainRows); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
		t.Fatal(err)
	}
}

// planNode is the part of EXPLAIN (FORMAT JSON) output the checks read.
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	SortKey      []string   `json:"Sort Key"`
	PlanRows     float64    `json:"Plan Rows"`
	Plans        []planNode `json:"Plans"`
	// With ANALYZE: rows a node returned, and rows it read and dropped.
	ActualRows      float64 `json:"Actual Rows"`
	RemovedByFilter float64 `json:"Rows Removed by Filter"`
}

func (n planNode) walk(fn func(planNode)) {
	fn(n)
	for _, c := range n.Plans {
		c.walk(fn)
	}
}

// explain returns the plan of sql, and a function that renders the query
// and its plan as text for failure messages. EXPLAIN plans with the bound
// values, as PostgreSQL does for List's unnamed statements.
func explain(ctx context.Context, t *testing.T, pool *pgxpool.Pool, sql string, args []any) (planNode, func() string) {
	t.Helper()
	plan := explainJSON(ctx, t, pool, "FORMAT JSON", sql, args)
	text := func() string {
		rows, err := pool.Query(ctx, "EXPLAIN "+sql, args...)
		if err != nil {
			return err.Error()
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err.Error()
		}
		return sql + "\n" + strings.Join(lines, "\n")
	}
	return plan, text
}

// explainJSON runs EXPLAIN (options) on sql and decodes its plan.
func explainJSON(ctx context.Context, t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, options, sql string, args []any) planNode {
	t.Helper()
	var raw []byte
	if err := q.QueryRow(ctx, "EXPLAIN ("+options+") "+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("explain: %v\n%s", err, sql)
	}
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		t.Fatalf("decode plan: %v\n%s", err, raw)
	}
	return out[0].Plan
}

// TestListPlans explains every list shape the API offers on one table of
// explainRows tasks, built once.
func TestListPlans(t *testing.T) {
	db := pgtest.New(t)
	start := time.Now()
	fillForExplain(t, db.Primary)
	t.Logf("loaded %d rows and vacuumed in %s", explainRows, time.Since(start).Round(time.Millisecond))

	t.Run("ordered", func(t *testing.T) { testOrderedPlans(t, db.Replica) })
	t.Run("fulltext", func(t *testing.T) { testFullTextPlans(t, db.Replica) })
	t.Run("skewed", func(t *testing.T) { testSkewedPlans(t, db.Primary) })
	t.Run("generic", func(t *testing.T) { testGenericPlans(t, db.Replica) })
	t.Run("parent", func(t *testing.T) { testParentPlans(t, db.Primary) })
	t.Run("trashed", func(t *testing.T) { testTrashedPlans(t, db.Primary) })
	t.Run("remind", func(t *testing.T) { testRemindPlan(t, db.Primary) })
}

// testRemindPlan: a reminder tick reads what it sends and nothing else.
// With every open task of the table waiting for a reminder (its due
// date), the tick's statement, run for real, walks tasks_remind_idx in
// order and stops at the batch: no Seq Scan, no Sort, no row read and
// dropped. So its cost is the batch's, with 200,000 tasks as with
// 1,000,000 (make bench measures that).
func testRemindPlan(t *testing.T, pool *pgxpool.Pool) {
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE tasks SET next_remind_at = due_at WHERE due_at IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	const batch = 500
	// A day's worth of due dates is ~1,100 tasks, two thirds of them open.
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	plan := explainJSON(ctx, t, tx, "ANALYZE, FORMAT JSON", fireRemindersSQL, []any{now, batch})
	var index, updated bool
	plan.walk(func(n planNode) {
		switch {
		case n.NodeType == "Seq Scan":
			t.Errorf("tick scans %s sequentially", n.RelationName)
		case n.NodeType == "Sort" && strings.Contains(strings.Join(n.SortKey, ","), "next_remind_at"):
			// (The lateral sorting a task's own few reminder times is fine.)
			t.Errorf("tick sorts the due tasks on %v", n.SortKey)
		case n.IndexName == "tasks_remind_idx":
			index = true
			if n.ActualRows > batch || n.RemovedByFilter > 0 {
				t.Errorf("tick read %v rows of the index and dropped %v, want at most %d and none", n.ActualRows, n.RemovedByFilter, batch)
			}
		case n.NodeType == "ModifyTable":
			updated = true
		}
	})
	if !index || !updated {
		t.Errorf("tick plan: index scan %v, update %v; want both", index, updated)
	}
	if plan.ActualRows != batch {
		t.Errorf("tick took %v tasks, want a full batch of %d", plan.ActualRows, batch)
	}
}

// testTrashedPlans: with the newest half of the table in the trash (and a
// tenth of the rest archived), a first page still reads about a page of
// rows per branch, and none it then throws away: the list indexes hold
// live tasks only, so the trashed rows are not walked past. (Before the
// partial indexes, 36,000 deleted newest rows halved list throughput
// until a VACUUM; trashed rows stay for 30 days.)
func testTrashedPlans(t *testing.T, pool *pgxpool.Pool) {
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{
		`UPDATE tasks SET deleted_at = now(), deleted_by = 'x' WHERE id IN (SELECT id FROM tasks ORDER BY created_at DESC LIMIT ` + strconv.Itoa(explainRows/2) + `)`,
		`UPDATE tasks SET archived_at = now() WHERE deleted_at IS NULL AND status IN ('done', 'cancelled') AND hashtext(id::text) % 5 = 0`,
		`ANALYZE tasks`,
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name     string
		q        ListQuery
		branches int
	}{
		{"admin, newest first", ListQuery{}, 1},
		{"admin, todo", ListQuery{Statuses: []Status{StatusTodo}}, 1},
		{"admin, done", ListQuery{Statuses: []Status{StatusDone}}, 1},
		{"busy's scope", ListQuery{Only: ownScope("busy")}, 10},
		{"a project", ListQuery{Project: "~busy"}, 5},
		{"archived", ListQuery{Archived: true}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Limit = 50
			sql, args, err := listSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			plan := explainJSON(ctx, t, tx, "ANALYZE, FORMAT JSON", sql, args)
			var read, dropped float64
			plan.walk(func(n planNode) {
				if n.RelationName == "tasks" {
					read += n.ActualRows + n.RemovedByFilter
					dropped += n.RemovedByFilter
				}
			})
			// A branch may drop a row for its own filters (an assigned
			// task of the caller's own project); 100,000 trashed rows
			// walked past would drop thousands.
			if read > float64(tt.branches*51) || dropped > float64(tt.branches) {
				t.Errorf("read %.0f rows of tasks (%.0f thrown away) for a page of 50 over %d branches:\n%s", read, dropped, tt.branches, sql)
			}
		})
	}
	// The trash of an owner of whom the trash holds a thousandth: a
	// branch per part of the scope, each an ordered scan of its own
	// index, rather than a walk of the whole trash (5,000 rows for a
	// page). (For busy, a tenth of the trash, the walk is as cheap, and
	// the planner rightly takes it.)
	for _, tt := range []struct {
		name     string
		scope    TrashScope
		branches int
	}{
		{"an owner's trash", TrashScope{Subject: "user-5", Maintains: []string{"~user-5"}, Writes: ownScope("busy").Projects}, 3},
		{"a manager's trash", TrashScope{Subject: "user-5", Maintains: []string{}, OwnAnywhere: true}, 2},
		{"an admin's trash", TrashScope{All: true}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sql, args := trashSQL(TrashQuery{Scope: tt.scope, Limit: 50})
			plan := explainJSON(ctx, t, tx, "ANALYZE, FORMAT JSON", sql, args)
			var read float64
			plan.walk(func(n planNode) {
				if n.RelationName == "tasks" {
					read += n.ActualRows + n.RemovedByFilter
				}
			})
			if read > float64(tt.branches*51) {
				raw := explainJSON(ctx, t, tx, "ANALYZE, FORMAT JSON", sql, args)
				var idx []string
				raw.walk(func(n planNode) {
					idx = append(idx, n.NodeType+" "+n.IndexName+" "+fmt.Sprint(n.ActualRows, "/", n.RemovedByFilter))
				})
				t.Errorf("read %.0f rows of tasks for a page of the trash over %d branches:\n%s\n%s", read, tt.branches, sql, strings.Join(idx, "\n"))
			}
		})
	}
}

// testParentPlans: a parent's subtasks are found from task_relations,
// whatever the other filters, not by walking a project or status in order
// and probing each row: a list of 5 subtasks reads about 5 rows of tasks.
func testParentPlans(t *testing.T, pool *pgxpool.Pool) {
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	var parent uuid.UUID
	const q = `
WITH p AS (SELECT id FROM tasks ORDER BY created_at LIMIT 1)
INSERT INTO task_relations (task_id, kind, other_id, created_by)
SELECT t.id, 'subtask_of', p.id, 'busy'
FROM p, (SELECT id FROM tasks WHERE owner_id = 'busy' ORDER BY created_at DESC LIMIT 5) t
RETURNING other_id`
	rows, _ := tx.Query(ctx, q)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) != 5 {
		t.Fatalf("relations: %d, %v", len(ids), err)
	}
	parent = ids[0]
	if _, err := tx.Exec(ctx, "ANALYZE task_relations"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		q    ListQuery
	}{
		{"admin", ListQuery{}},
		{"admin, todo", ListQuery{Statuses: []Status{StatusTodo}}},
		{"busy's scope", ListQuery{Only: ownScope("busy")}},
		{"busy's scope, oldest first, text", ListQuery{Only: ownScope("busy"), Ascending: true, Query: "deploy"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Parent, tt.q.Limit = &parent, 50
			sql, args, err := listSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			plan := explainJSON(ctx, t, tx, "ANALYZE, FORMAT JSON", sql, args)
			var read float64
			plan.walk(func(n planNode) {
				if n.RelationName == "tasks" {
					read += n.ActualRows + n.RemovedByFilter
				}
			})
			if read > 50 {
				t.Errorf("read %.0f rows of tasks for 5 subtasks:\n%s", read, sql)
			}
		})
	}
}

var statusIndex = regexp.MustCompile(`^tasks_[a-z_]+_created_at_id_idx$`)

// testGenericPlans checks the lists List keeps prepared (genericPlanSafe):
// PostgreSQL must switch them to their generic plan, so they are not
// planned on every run, and that plan must be as good as the custom plans
// the other tests check, index-ordered with no Seq Scan and no Sort.
func testGenericPlans(t *testing.T, pool *pgxpool.Pool) {
	ctx := t.Context()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	cursor := Cursor{CreatedAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), ID: uuid.MustParse("018f2b4e-0000-7000-8000-000000000000")}
	var tests []ListQuery
	for _, statuses := range [][]Status{nil, {StatusDone}, {StatusTodo, StatusBlocked}, Statuses} {
		for _, asc := range []bool{false, true} {
			for _, withCursor := range []bool{false, true} {
				q := ListQuery{Statuses: statuses, Ascending: asc, Limit: 50}
				if withCursor {
					c := cursor
					c.Ascending = asc
					q.After = &c
				}
				tests = append(tests, q)
			}
		}
	}
	for i, q := range tests {
		t.Run(fmt.Sprintf("statuses=%d/asc=%t/cursor=%t", len(q.Statuses), q.Ascending, q.After != nil), func(t *testing.T) {
			if !q.genericPlanSafe() {
				t.Fatal("the shape is not one List prepares")
			}
			sql, args, err := listSQL(q)
			if err != nil {
				t.Fatal(err)
			}
			name := fmt.Sprintf("generic_%d", i)
			if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+sql); err != nil {
				t.Fatalf("prepare: %v\n%s", err, sql)
			}
			defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "DEALLOCATE "+name) }()
			// EXECUTE takes its values as literals (a utility statement has
			// no parameters); these are the test's own.
			lits := make([]string, len(args))
			for j, a := range args {
				switch v := a.(type) {
				case int:
					lits[j] = strconv.Itoa(v)
				case string:
					lits[j] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
				case time.Time:
					lits[j] = "'" + v.Format(time.RFC3339Nano) + "'::timestamptz"
				case uuid.UUID:
					lits[j] = "'" + v.String() + "'::uuid"
				default:
					t.Fatalf("no literal for %T", a)
				}
			}
			execute := "EXECUTE " + name
			if len(lits) > 0 {
				execute += "(" + strings.Join(lits, ", ") + ")"
			}
			// A first page has no parameter left, so PostgreSQL plans it
			// once and runs that plan every time; with LIMIT as a parameter
			// it planned every run (it costs a generic LIMIT for a tenth
			// of the rows, and so prefers a plan made with the value).
			// A later page keeps its cursor as parameters and is planned
			// with them: a generic plan is costed for a third of the rows,
			// twice a custom one, so PostgreSQL never picks it.
			if q.After == nil {
				const runs = 8
				for range runs {
					if _, err := conn.Exec(ctx, execute); err != nil {
						t.Fatalf("%v\n%s", err, execute)
					}
				}
				var generic, custom int64
				if err := conn.QueryRow(ctx, "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1", name).Scan(&generic, &custom); err != nil {
					t.Fatal(err)
				}
				if generic != runs || custom != 0 {
					t.Errorf("%d generic and %d custom plans in %d runs, want the generic plan every time:\n%s", generic, custom, runs, sql)
				}
			}
			// This connection only: back to the default before it returns
			// to the pool.
			if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode") }()
			plan := explainJSON(ctx, t, conn, "FORMAT JSON", execute, nil)
			plan.walk(func(n planNode) {
				if n.NodeType == "Seq Scan" && n.RelationName == "tasks" {
					t.Errorf("generic plan has a Seq Scan on tasks:\n%s", sql)
				}
				if strings.HasSuffix(n.NodeType, "Sort") && sortsOnCreatedAt(n) {
					t.Errorf("generic plan sorts on created_at:\n%s", sql)
				}
				// A status branch reads its status's partial index: a walk
				// of the created_at index would filter out the others.
				if len(q.Statuses) > 0 && n.RelationName == "tasks" && !statusIndex.MatchString(n.IndexName) {
					t.Errorf("generic plan reads tasks by %s %q, want a tasks_<status>_created_at_id_idx:\n%s", n.NodeType, n.IndexName, sql)
				}
			})
		})
	}
}

// testSkewedPlans runs status lists when the newest tasks are all one
// status, as after a burst of new "todo" tasks: a list of another status
// must still read about a page of rows, not walk past the burst. The
// burst is inserted in a transaction that is rolled back, so the
// statistics still describe the table without it, as they would until the
// next analyze.
func testSkewedPlans(t *testing.T, pool *pgxpool.Pool) {
	const burst, limit = 20_000, 50
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `
INSERT INTO tasks (id, title, status, priority, owner_id, created_at, updated_at)
SELECT gen_random_uuid(), 'burst ' || g, 'todo', 'medium', 'burst',
       timestamptz '2027-01-01' + g * interval '1 second', timestamptz '2027-01-01'
FROM generate_series(1, $1::int) AS g`, burst); err != nil {
		t.Fatal(err)
	}
	after := &Cursor{CreatedAt: time.Date(2027, 1, 1, 3, 0, 0, 0, time.UTC), ID: uuid.Max}
	tests := []struct {
		name string
		q    ListQuery
	}{
		{"done", ListQuery{Statuses: []Status{StatusDone}}},
		{"blocked", ListQuery{Statuses: []Status{StatusBlocked}}},
		{"done and cancelled", ListQuery{Statuses: []Status{StatusDone, StatusCancelled}}},
		{"done after a cursor inside the burst", ListQuery{Statuses: []Status{StatusDone}, After: after}},
		{"todo, the burst itself", ListQuery{Statuses: []Status{StatusTodo}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Limit = limit
			sql, args, err := listSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			plan := explainJSON(ctx, t, tx, "ANALYZE, FORMAT JSON", sql, args)
			// Every branch reads at most limit+1 rows it keeps.
			var read float64
			plan.walk(func(n planNode) {
				if n.RelationName == "tasks" {
					read += n.ActualRows + n.RemovedByFilter
				}
			})
			if want := float64(len(tt.q.Statuses) * (limit + 1)); read > want {
				t.Errorf("read %.0f rows of tasks for a page of %d, want at most %.0f:\n%s", read, limit, want, sql)
			}
		})
	}
}

// testOrderedPlans checks that lists are served by index scans in
// (created_at, id) order.
//
// "busy" subjects have thousands of matching tasks, where order matters:
// there the plan must have no Seq Scan on tasks and no Sort on created_at.
// For "light" subjects (a few dozen matches per branch) PostgreSQL rightly
// prefers a bitmap scan and sorting those few rows over fetching them in
// index order, so there a Sort is allowed if it is estimated to see at
// most maxLightSort rows; a Seq Scan is not.
func testOrderedPlans(t *testing.T, pool *pgxpool.Pool) {
	const maxLightSort = 1000
	day := func(s string) *time.Time {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return &d
	}
	cursorAt := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cursorID := uuid.MustParse("018f2b4e-0000-7000-8000-000000000000")

	regimes := []struct {
		name                    string
		member, owner, assignee string
		strict                  bool
	}{
		{"busy", "busy", "busy", "busy2", true},
		{"light", "user-7", "user-42", "user-99", false},
	}
	statusSets := []struct {
		name     string
		statuses []Status
	}{
		{"any", nil},
		{"one", []Status{StatusTodo}},
		{"several", []Status{StatusTodo, StatusBlocked, StatusInProgress}},
	}
	type extra struct {
		name  string
		apply func(q *ListQuery, owner, assignee string)
	}
	extras := []extra{
		{"plain", func(*ListQuery, string, string) {}},
		{"owner", func(q *ListQuery, o, _ string) { q.OwnerID = o }},
		{"assignee", func(q *ListQuery, _, a string) { q.AssigneeID = a }},
		{"owner_assignee", func(q *ListQuery, o, a string) { q.OwnerID, q.AssigneeID = o, a }},
		{"label", func(q *ListQuery, _, _ string) { q.Label = "frontend" }},
		{"due_before", func(q *ListQuery, _, _ string) { q.DueBefore = day("2026-03-01") }},
		{"due_after", func(q *ListQuery, _, _ string) { q.DueAfter = day("2026-02-01") }},
		{"due_range", func(q *ListQuery, _, _ string) { q.DueAfter, q.DueBefore = day("2026-02-01"), day("2026-03-15") }},
	}

	type tc struct {
		name   string
		q      ListQuery
		strict bool
	}
	var tests []tc
	for _, r := range regimes {
		for _, visibleTo := range []string{"", r.member} {
			vis := "all"
			if visibleTo != "" {
				vis = "member"
			}
			for _, s := range statusSets {
				for _, asc := range []bool{false, true} {
					for _, withCursor := range []bool{false, true} {
						for _, e := range extras {
							q := ListQuery{Only: ownScope(visibleTo), Statuses: s.statuses, Ascending: asc, Limit: 50}
							if withCursor {
								q.After = &Cursor{CreatedAt: cursorAt, ID: cursorID, Ascending: asc}
							}
							e.apply(&q, r.owner, r.assignee)
							name := fmt.Sprintf("%s/%s/%s/asc=%t/cursor=%t/%s", r.name, vis, s.name, asc, withCursor, e.name)
							// A member's branches fix the project as well as the
							// owner or assignee filters; the planner multiplies
							// their selectivities, though a personal project and
							// its owner coincide, and may then sort the few dozen
							// rows it expects: allowed up to maxLightSort.
							tests = append(tests, tc{name, q, r.strict && visibleTo == ""})
						}
					}
				}
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sql, args, err := listSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if sql == "" {
				return // the filters contradict visibility: List runs no query
			}
			plan, text := explain(t.Context(), t, pool, sql, args)
			plan.walk(func(n planNode) {
				if n.NodeType == "Seq Scan" && n.RelationName == "tasks" {
					t.Errorf("Seq Scan on tasks:\n%s", text())
				}
				if strings.HasSuffix(n.NodeType, "Sort") && sortsOnCreatedAt(n) && (tt.strict || n.PlanRows > maxLightSort) {
					t.Errorf("%s on created_at over %.0f rows:\n%s", n.NodeType, n.PlanRows, text())
				}
			})
		})
	}
}

// testFullTextPlans checks full-text lists never scan the whole table, and
// that a selective search term is found through the GIN index. A GIN index
// keeps no order, so those matches are then sorted (top-N, bounded by the
// matches): that Sort is inherent to ranking-free search ordered by time.
// A common term may instead be served by walking the (created_at, id)
// order and filtering, which PostgreSQL picks when matches are dense.
func testFullTextPlans(t *testing.T, pool *pgxpool.Pool) {
	cursor := &Cursor{CreatedAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), ID: uuid.MustParse("018f2b4e-0000-7000-8000-000000000000")}
	terms := []struct {
		name, query string
		selective   bool
	}{
		{"rare", "ref1234", true},
		{"rare_websearch", `"quarterly report" ref4321 -kafka`, true},
		{"common", "kafka", false},
	}
	type tc struct {
		name    string
		q       ListQuery
		wantGIN bool
	}
	var tests []tc
	for _, term := range terms {
		for _, visibleTo := range []string{"", "busy"} {
			for _, statuses := range [][]Status{nil, {StatusTodo}, {StatusTodo, StatusDone}} {
				for _, asc := range []bool{false, true} {
					for _, withCursor := range []bool{false, true} {
						q := ListQuery{Query: term.query, Only: ownScope(visibleTo), Statuses: statuses, Ascending: asc, Limit: 50}
						if withCursor {
							c := *cursor
							c.Ascending = asc
							q.After = &c
						}
						name := fmt.Sprintf("%s/visible=%q/statuses=%d/asc=%t/cursor=%t", term.name, visibleTo, len(statuses), asc, withCursor)
						// With visibility the owner/assignee indexes may
						// be the better way in; without it, a rare term
						// must go through the GIN index.
						tests = append(tests, tc{name, q, term.selective && visibleTo == ""})
					}
				}
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sql, args, err := listSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			plan, text := explain(t.Context(), t, pool, sql, args)
			gin := false
			plan.walk(func(n planNode) {
				if n.NodeType == "Seq Scan" && n.RelationName == "tasks" {
					t.Errorf("Seq Scan on tasks:\n%s", text())
				}
				gin = gin || n.IndexName == "tasks_live_search_idx"
			})
			if tt.wantGIN && !gin {
				t.Errorf("tasks_live_search_idx not used:\n%s", text())
			}
		})
	}
}

func sortsOnCreatedAt(n planNode) bool {
	for _, k := range n.SortKey {
		if strings.Contains(k, "created_at") {
			return true
		}
	}
	return false
}

// ownScope is own (store_test.go) inside the package.
func ownScope(subject string) *Scope {
	if subject == "" {
		return nil
	}
	return &Scope{Projects: []string{"~" + subject}, Assignee: subject}
}
