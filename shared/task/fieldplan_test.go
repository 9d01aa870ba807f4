package task

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/pgtest"
)

// fieldPlanRows and fieldPlanProject: the scale, a 100,000-task
// project in a 1,000,000-task table.
const (
	fieldPlanRows    = 1_000_000
	fieldPlanProject = 100_000
)

// fillForFieldPlans loads fieldPlanRows tasks in ten projects, "big"
// holding every tenth, each with custom field values under its project's
// definition ids (project n's field k is 10n+k, so containment in the GIN
// index finds one project's values only), then VACUUM ANALYZE:
//   - k=1 "severity", select: one of five options ("o1".."o5"), 20% each;
//   - k=2 "points", number 0..999, uniform;
//   - k=3 "start", date in a 1000-day window, uniform;
//   - k=4 "flag", checkbox, true on 1%;
//   - k=5 "ref", text, "ref0".."ref9999": about 10 tasks of big each.
func fillForFieldPlans(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	const projects = `
INSERT INTO projects (key, name, created_by)
SELECT CASE g WHEN 0 THEN 'big' ELSE 'other-' || g END, 'P' || g, 'x'
FROM generate_series(0, 9) AS g`
	const q = `
INSERT INTO tasks (id, title, description, status, priority, owner_id, project, fields, created_at, updated_at)
SELECT gen_random_uuid(), 'task ' || g, '',
       (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + h % 5],
       'medium', 'user-' || (h / 5 % 997),
       CASE g % 10 WHEN 0 THEN 'big' ELSE 'other-' || (g % 10) END,
       jsonb_build_object(
         (g % 10 * 10 + 1)::text, 'o' || (1 + h / 7 % 5),
         (g % 10 * 10 + 2)::text, h / 11 % 1000,
         (g % 10 * 10 + 3)::text, to_char(date '2024-01-01' + (h / 13 % 1000)::int, 'YYYY-MM-DD'),
         (g % 10 * 10 + 4)::text, h / 17 % 100 = 0,
         (g % 10 * 10 + 5)::text, 'ref' || (h / 19 % 10000)),
       timestamptz '2025-01-01' + g * interval '1 second',
       timestamptz '2025-01-01' + g * interval '1 second'
FROM generate_series(1, $1::int) AS g,
     LATERAL (SELECT hashint4(g)::bigint + 2147483648 AS h) AS hashes`
	// One statement past the pool's statement timeout: on a connection
	// of its own without one.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, s := range []string{"SET statement_timeout = 0", projects, q, "VACUUM ANALYZE tasks", "RESET statement_timeout"} {
		var args []any
		if s == q {
			args = []any{fieldPlanRows}
		}
		if _, err := conn.Exec(ctx, s, args...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFieldFilterPlans: a page of a 100,000-task project filtered by a
// custom field, in a table of 1,000,000 tasks, costs one index path per
// status branch and no Seq Scan, for equality (selective or not) and for
// ranges, alone and combined; the plans and their times are logged
// (docs/custom-fields.md, Indexes and plans).
func TestFieldFilterPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 1,000,000 tasks")
	}
	db := pgtest.New(t)
	start := time.Now()
	fillForFieldPlans(t, db.Primary)
	t.Logf("loaded %d rows and vacuumed in %s", fieldPlanRows, time.Since(start).Round(time.Millisecond))
	var big int
	if err := db.Primary.QueryRow(t.Context(), `SELECT count(*) FROM tasks WHERE project = 'big'`).Scan(&big); err != nil || big != fieldPlanProject {
		t.Fatalf("big has %d tasks (%v), want %d", big, err, fieldPlanProject)
	}
	eq := func(id int64, v string) FieldFilter {
		return FieldFilter{ID: id, Op: FieldEq, Value: json.RawMessage(v)}
	}
	rng := func(id int64, op FieldOp, v string) FieldFilter {
		return FieldFilter{ID: id, Op: op, Value: json.RawMessage(v)}
	}
	member := &Scope{Projects: []string{"big", "other-1"}, Assignee: "user-5"}
	for _, tt := range []struct {
		name   string
		fields []FieldFilter
	}{
		{"select, 20% of the project", []FieldFilter{eq(1, `"o3"`)}},
		{"text, 10 tasks of the project", []FieldFilter{eq(5, `"ref42"`)}},
		{"checkbox true, 1%", []FieldFilter{eq(4, `true`)}},
		{"checkbox false, 99%", []FieldFilter{{ID: 4, Op: FieldEq, Value: json.RawMessage(`true`), Not: true}}},
		{"number range, 10%", []FieldFilter{rng(2, FieldGte, `900`)}},
		{"number range, 0.5%", []FieldFilter{rng(2, FieldGte, `100`), rng(2, FieldLte, `104`)}},
		{"date range, a month", []FieldFilter{rng(3, FieldGte, `"2025-01-01"`), rng(3, FieldLte, `"2025-01-31"`)}},
		{"select and number range", []FieldFilter{eq(1, `"o1"`), rng(2, FieldLte, `499`)}},
	} {
		for _, scope := range []struct {
			name string
			only *Scope
		}{{"admin", nil}, {"member", member}} {
			t.Run(tt.name+", "+scope.name, func(t *testing.T) {
				q := ListQuery{Project: "big", Only: scope.only, Fields: tt.fields, Limit: 50}
				sql, args, err := listSQL(q)
				if err != nil {
					t.Fatal(err)
				}
				checkFieldPlan(t.Context(), t, db.Replica, sql, args)
			})
		}
	}
}

// checkFieldPlan runs sql under EXPLAIN ANALYZE, fails on a Seq Scan,
// and logs the time and the index path of each scan of tasks.
func checkFieldPlan(ctx context.Context, t *testing.T, pool *pgxpool.Pool, sql string, args []any) {
	t.Helper()
	var raw []byte
	if err := pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		t.Fatalf("explain: %v\n%s", err, sql)
	}
	var out []struct {
		Plan      planNode `json:"Plan"`
		Execution float64  `json:"Execution Time"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
		t.Fatalf("decode plan: %v", err)
	}
	var paths []string
	var read float64
	out[0].Plan.walk(func(n planNode) {
		if n.NodeType == "Seq Scan" {
			t.Errorf("Seq Scan on %s:\n%s", n.RelationName, sql)
		}
		if n.IndexName != "" {
			paths = append(paths, n.NodeType+" "+n.IndexName)
		}
		if n.RelationName == "tasks" {
			read += n.ActualRows + n.RemovedByFilter
		}
	})
	if len(paths) == 0 {
		t.Errorf("no index path:\n%s", sql)
	}
	t.Logf("%.2f ms, %.0f rows of tasks read, %d rows returned: %s", out[0].Execution, read, int(out[0].Plan.ActualRows), strings.Join(dedupe(paths), "; "))
}

// dedupe keeps the first of each repeated string, in order.
func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
