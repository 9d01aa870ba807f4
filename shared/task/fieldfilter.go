package task

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/field"
)

// FieldOp is how a custom field filter compares: equality, or a bound of
// a range.
type FieldOp string

const (
	FieldEq  FieldOp = "eq"  // field.<name>=v
	FieldGte FieldOp = "gte" // field.<name>[gte]=v
	FieldLte FieldOp = "lte" // field.<name>[lte]=v
)

// FieldFilter keeps the tasks whose custom field (by definition id)
// compares to Value, a JSON value in the stored form; Not inverts an
// equality (a checkbox filtered false keeps the tasks it is not true on,
// set false or never set).
type FieldFilter struct {
	ID    int64
	Op    FieldOp
	Value json.RawMessage
	Not   bool
}

// FieldQuery is a custom field filter as a query string names it, before
// its project's definitions resolve it.
type FieldQuery struct {
	Name  string
	Op    FieldOp
	Value string
}

// ResolveFieldFilters turns the query's filters into FieldFilters against
// the project's live definitions: an unknown name, an operator the type
// does not allow, or a value that is not of the type is a 422 naming
// field.<name>. Values are parsed by type: text, url and user match
// exactly; select and multi_select take an option by name (as the UI
// shows it, case-insensitive) or by id, multi_select matching tasks that
// have the option; checkbox true or false; number a decimal; date
// YYYY-MM-DD; datetime RFC 3339 (compared in UTC).
func ResolveFieldFilters(set field.Set, qs []FieldQuery) ([]FieldFilter, error) {
	var bad errs.Fields
	out := make([]FieldFilter, 0, len(qs))
	for _, q := range qs {
		name := "field." + q.Name
		d, ok := set.ByName(q.Name)
		if !ok {
			bad.Add(name, "names no custom field of the project")
			continue
		}
		if q.Op != FieldEq && !ordered(d.Type) {
			bad.Add(name, "takes [gte] and [lte] only for number, date and datetime fields; a "+string(d.Type)+" field is filtered by equality")
			continue
		}
		f, problem := fieldValue(d, q.Value)
		if problem != "" {
			bad.Add(name, problem)
			continue
		}
		f.ID, f.Op = d.ID, q.Op
		out = append(out, f)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ordered reports whether t's values have an order ranges compare in.
func ordered(t field.Type) bool { return t == field.Number || t == field.Date || t == field.DateTime }

// fieldValue parses v as a value of d's type, in the stored form.
func fieldValue(d field.Definition, v string) (FieldFilter, string) {
	var f FieldFilter
	str := func(s string) json.RawMessage { b, _ := json.Marshal(s); return b }
	switch d.Type {
	case field.Number:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || strings.ContainsAny(v, "xXpP_") || n != n {
			return f, "must be a decimal number"
		}
		f.Value = json.RawMessage(strconv.FormatFloat(n, 'f', -1, 64))
	case field.Date:
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return f, "must be a date, YYYY-MM-DD"
		}
		f.Value = str(v)
	case field.DateTime:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return f, "must be an RFC 3339 date-time, e.g. 2026-12-01T09:00:00Z"
		}
		f.Value = str(t.UTC().Format(field.DateTimeLayout))
	case field.Checkbox:
		switch v {
		case "true":
			f.Value = json.RawMessage("true")
		case "false":
			// Unchecked is false or never set: not true.
			f.Value, f.Not = json.RawMessage("true"), true
		default:
			return f, "must be true or false"
		}
	case field.Select, field.MultiSelect:
		o, ok := optionOf(d, v)
		if !ok {
			return f, "names no option of the field"
		}
		id, _ := json.Marshal(o.ID)
		f.Value = id
		if d.Type == field.MultiSelect {
			f.Value = json.RawMessage("[" + string(id) + "]") // has the option
		}
	default: // text, url, user: exact
		if v == "" {
			return f, "must not be empty"
		}
		f.Value = str(v)
	}
	return f, ""
}

// optionOf finds d's option named v (case-insensitive), or whose id is v.
func optionOf(d field.Definition, v string) (field.Option, bool) {
	for _, o := range d.Options {
		if strings.EqualFold(o.Name, v) {
			return o, true
		}
	}
	for _, o := range d.Options {
		if id, _ := json.Marshal(o.ID); string(id) == v || string(id) == strconv.Quote(v) {
			return o, true
		}
	}
	return field.Option{}, false
}

// fieldConds renders custom field filters. Equality is containment,
// fields @> {"<id>": v}, which the tasks_live_<status>_fields_idx GIN
// indexes (jsonb_path_ops) serve; a range compares the jsonb value (numbers numerically, the
// fixed-width date and datetime strings in time order), served by the
// project's ordered index walk (fieldPageSQL; docs/custom-fields.md,
// Indexes and plans). Ids are integers, written as literals.
func fieldConds(fs []FieldFilter, arg func(any) string) []string {
	var c []string
	for _, f := range fs {
		id := strconv.FormatInt(f.ID, 10)
		switch f.Op {
		case FieldGte:
			c = append(c, "fields->'"+id+"' >= "+arg(string(f.Value))+"::jsonb")
		case FieldLte:
			c = append(c, "fields->'"+id+"' <= "+arg(string(f.Value))+"::jsonb")
		default:
			cond := "fields @> " + arg(`{"`+id+`":`+string(f.Value)+`}`) + "::jsonb"
			if f.Not {
				cond = "NOT " + cond
			}
			c = append(c, cond)
		}
	}
	return c
}

// gatedFieldPage reports whether a list filtered by q's fields is built
// by fieldPageSQL: a live list of one project (so every branch fixes a
// status, whose partial GIN index there is) with an equality a GIN index
// can serve. Ranges and "not checked" alone have only the ordered walk,
// which listSQL's branches already are.
func gatedFieldPage(q ListQuery) bool {
	return !q.Archived && q.Project != "" &&
		slices.ContainsFunc(q.Fields, func(f FieldFilter) bool { return f.Op == FieldEq && !f.Not })
}

// fieldWindow is how many pages of a project's tasks of one status a
// filtered branch walks in order before it asks the GIN index instead.
const fieldWindow = 10

// sizeCap is the most statusSizes counts of one status: a window of the
// largest page.
const sizeCap = fieldWindow * (MaxListLimit + 1)

// How many projects' sizes a Store keeps, and for how long: a size only
// chooses between plans that list the same tasks, so a stale one costs
// time, never a wrong page.
const (
	sizeProjects = 4096
	sizeTTL      = time.Minute
)

// statusSizes returns the project's live tasks by status, each counted up
// to sizeCap+1 in the walk index alone (an index-only scan), cached a
// minute.
func (s *Store) statusSizes(ctx context.Context, project string) (map[Status]int, error) {
	if m, ok := s.sizes.Get(project); ok {
		return m, nil
	}
	// Counted to sizeCap+1: a count past sizeCap says "more".
	const q = `
SELECT s.status, (SELECT count(*) FROM (SELECT FROM tasks
                  WHERE project = $1 AND status = s.status AND deleted_at IS NULL AND archived_at IS NULL
                  LIMIT $3) AS n)
FROM unnest($2::text[]) AS s(status)`
	names := make([]string, len(Statuses))
	for i, st := range Statuses {
		names[i] = string(st)
	}
	rows, _ := s.db.Replica.Query(ctx, q, project, names, sizeCap+1)
	m := make(map[Status]int, len(Statuses))
	var st string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&st, &n}, func() error { m[Status(st)] = n; return nil }); err != nil {
		return nil, fmt.Errorf("task: list: project size: %w", err)
	}
	s.sizes.Add(project, m)
	return m, nil
}

// bigStatuses says, for each status branch, whether the project has more
// tasks of that status than a page's window; unknown sizes are big.
func (q ListQuery) bigStatuses(statuses []Status) []bool {
	big := make([]bool, len(statuses))
	window := fieldWindow * (q.Limit + 1)
	for i, st := range statuses {
		n, ok := q.sizes[st]
		big[i] = !ok || n > window
	}
	return big
}

// fieldPageSQL is listSQL's query for a page of one project (project,
// its placeholder) filtered by a custom field equality. Two plans serve
// such a branch, and which is cheaper depends on how common the value is
// in the project: walking the project's (project, status, created_at, id)
// index in page order, filtering, costs about page ÷ share rows; the
// status's GIN index (tasks_live_<status>_fields_idx) costs every match,
// then a sort. PostgreSQL cannot tell which: it multiplies the project's
// selectivity by the value's as if unrelated (a field's id belongs to one
// project), so it expects a tenth or less of the matches there are. On a
// 100,000-task project its choice was a coin toss (costs within 4%), and
// its GIN plans ANDed the project's whole index: 100,000 entries and
// 20,000 rows a branch, 0.2 s a page (TestFieldFilterPlans); on a
// 1,000-task one it read the matches of every status for each page of
// one (make bench: p99 29.9 ms).
//
// So the plan is chosen here, not by estimates. The walk is written so
// that it is the only plan: its filter is "F OR project <> $project",
// the same rows in a branch that fixes the project, but an OR the GIN
// index cannot serve and the planner expects to keep nearly every row,
// so it walks in order and stops at the page. A status the project has at
// most a window of (fieldWindow pages, bigStatuses) is walked: that reads
// at most the window, whatever the value, and plans the same for every
// value, so its plan is generic (genericPlanSafe). A bigger one decides
// when it runs, by a gate (a CTE, evaluated once): the walk if the
// window's first rows hold a page of matches (a walk that stops at the
// page's last match), else the GIN index for the status's matches, the
// project applied after them behind OFFSET 0 so no project index is
// ANDed in: the value is rare there, under a tenth of the window. Each
// arm sits behind its gate as a one-time filter, so the arm not chosen
// never runs, and all branches' arms merge (a Merge Append reading about
// a page in all) as listSQL's branches do.
func fieldPageSQL(visibility [][]string, statuses []string, big []bool, common, fields []string, project, order string, limit int) string {
	n := strconv.Itoa(limit)
	window := strconv.Itoa(fieldWindow * limit)
	walkOnly := []string{"((" + strings.Join(fields, " AND ") + ") OR project <> " + project + ")"}
	var gates, arms strings.Builder
	gate := 0
	for _, vis := range visibility {
		for i, sc := range statuses {
			status := []string{sc}
			if arms.Len() > 0 {
				arms.WriteString("\nUNION ALL\n")
			}
			walk := func(b *strings.Builder) {
				b.WriteString("(SELECT " + Columns + " FROM tasks")
				writeWhere(b, vis, status, common, walkOnly)
				b.WriteString("\n" + order + "\nLIMIT " + n + ")")
			}
			if !big[i] {
				walk(&arms)
				continue
			}
			gate++
			g := "gate" + strconv.Itoa(gate)
			if gate > 1 {
				gates.WriteString(",\n")
			}
			gates.WriteString(g + " AS (SELECT EXISTS (SELECT FROM (SELECT fields FROM tasks")
			writeWhere(&gates, vis, status, common)
			gates.WriteString("\n" + order + "\nLIMIT " + window + ") AS w")
			writeWhere(&gates, fields)
			gates.WriteString("\nOFFSET " + strconv.Itoa(limit-1) + ") AS walk)")

			// Each arm is planned as if alone, its gate a one-time filter
			// above it (inside, it would count in the planner's
			// estimates). The order again on each, so the branches merge.
			arms.WriteString("(SELECT " + Columns + " FROM ")
			walk(&arms)
			arms.WriteString(" AS a\nWHERE (SELECT walk FROM " + g + ")\n" + order + ")\nUNION ALL\n")

			arms.WriteString("(SELECT " + Columns + " FROM (SELECT " + Columns + " FROM tasks")
			writeWhere(&arms, status, common, fields)
			arms.WriteString("\nOFFSET 0) AS g")
			writeWhere(&arms, vis, []string{"NOT (SELECT walk FROM " + g + ")"})
			arms.WriteString("\n" + order + "\nLIMIT " + n + ")")
		}
	}
	var b strings.Builder
	if gate > 0 {
		b.WriteString("WITH " + gates.String() + "\n")
	}
	b.WriteString("SELECT " + Columns + "\nFROM (\n" + arms.String() + "\n) AS t\n" + order + "\nLIMIT " + n)
	return b.String()
}
