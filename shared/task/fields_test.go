package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

// fieldsEnv is a store on a database with projects "web" and "ops", and
// on web a field of every type (and a required one on ops).
type fieldsEnv struct {
	s    *task.Store
	db   *pg.DB
	defs *field.Store
	web  map[string]field.Definition // by name
}

func newFieldsEnv(t *testing.T) fieldsEnv {
	t.Helper()
	s, db := newStore(t)
	ctx := t.Context()
	if _, err := db.Primary.Exec(ctx, `INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x'), ('ops', 'Ops', 'x')`); err != nil {
		t.Fatal(err)
	}
	defs, err := field.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	e := fieldsEnv{s: s, db: db, defs: defs, web: map[string]field.Definition{}}
	opts := func(names ...string) []field.Option {
		var o []field.Option
		for _, n := range names {
			o = append(o, field.Option{Name: n})
		}
		return o
	}
	for _, d := range []field.Definition{
		{Project: "web", Name: "note", Type: field.Text},
		{Project: "web", Name: "points", Type: field.Number},
		{Project: "web", Name: "start", Type: field.Date},
		{Project: "web", Name: "at", Type: field.DateTime},
		{Project: "web", Name: "ok", Type: field.Checkbox},
		{Project: "web", Name: "link", Type: field.URL},
		{Project: "web", Name: "reviewer", Type: field.User},
		{Project: "web", Name: "severity", Type: field.Select, Options: opts("Low", "High")},
		{Project: "web", Name: "tags", Type: field.MultiSelect, Options: opts("a", "b")},
		{Project: "ops", Name: "severity", Type: field.Select, Options: opts("high", "critical")},
		{Project: "ops", Name: "points", Type: field.Number},
		{Project: "ops", Name: "team", Type: field.Text, Required: true},
	} {
		d.CreatedBy = "x"
		c, err := defs.Create(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if c.Project == "web" {
			e.web[c.Name] = c
		}
	}
	return e
}

func (e fieldsEnv) optionID(name, option string) string {
	for _, o := range e.web[name].Options {
		if o.Name == option {
			return o.ID
		}
	}
	panic("no option " + option)
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// create makes a task of alice's in web with the values fields (a JSON
// object by name).
func (e fieldsEnv) create(t *testing.T, fields string) task.Task {
	t.Helper()
	d := draft("alice", "T")
	d.Project = "web"
	if err := json.Unmarshal([]byte(fields), &d.FieldsPatch); err != nil {
		t.Fatal(err)
	}
	c, err := e.s.Create(t.Context(), "alice", d)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameJSON compares a value by meaning: the database keeps "<" where
// encoding/json wrote "\u003c".
func sameJSON(got json.RawMessage, want string) bool {
	var a, b any
	return json.Unmarshal(got, &a) == nil && json.Unmarshal([]byte(want), &b) == nil && reflect.DeepEqual(a, b)
}

// fieldNames are the fields a validation error names.
func fieldNames(err error) []string {
	var ve *errs.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

// TestFieldValuesByType: every type's valid value is stored and shown by
// name on create and on PATCH; every invalid one is a 422 naming
// fields.<name>, and nothing is written.
func TestFieldValuesByType(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	high, tagB := e.optionID("severity", "High"), e.optionID("tags", "b")
	for _, tc := range []struct {
		name, value string
		want        string // as shown; "" for refused
	}{
		{"note", `"hello <b>"`, `"hello \u003cb\u003e"`},
		{"note", `""`, ""},
		{"note", `7`, ""},
		{"points", `3.5`, `3.5`},
		{"points", `"3"`, ""},
		{"start", `"2026-02-28"`, `"2026-02-28"`},
		{"start", `"2026-02-30"`, ""},
		{"at", `"2026-03-01T10:00:00+02:00"`, `"2026-03-01T08:00:00.000000Z"`},
		{"at", `"yesterday"`, ""},
		{"ok", `true`, `true`},
		{"ok", `"yes"`, ""},
		{"link", `"https://example.com/x"`, `"https://example.com/x"`},
		{"link", `"javascript:alert(1)"`, ""},
		{"reviewer", `"bob"`, `"bob"`},
		{"reviewer", `""`, ""},
		{"severity", `"` + high + `"`, `"` + high + `"`},
		{"severity", `"High"`, ""}, // values name options by id
		{"severity", `"nope"`, ""},
		{"tags", `["` + tagB + `"]`, `["` + tagB + `"]`},
		{"tags", `["zzz"]`, ""},
		{"unknown", `1`, ""},
	} {
		t.Run(tc.name+" "+tc.value, func(t *testing.T) {
			d := draft("alice", "T")
			d.Project = "web"
			d.FieldsPatch = map[string]json.RawMessage{tc.name: raw(tc.value)}
			created, err := e.s.Create(ctx, "alice", d)
			if tc.want == "" {
				if got := fieldNames(err); !slices.Equal(got, []string{"fields." + tc.name}) {
					t.Fatalf("create: %v, want a 422 naming fields.%s", err, tc.name)
				}
			} else if err != nil {
				t.Fatalf("create: %v", err)
			} else if got := created.Fields[tc.name]; !sameJSON(got, tc.want) {
				t.Errorf("create shows %s, want %s", got, tc.want)
			}
			// The same value by PATCH of a task without it.
			d.FieldsPatch = nil
			plain, err := e.s.Create(ctx, "alice", d)
			if err != nil {
				t.Fatal(err)
			}
			up, err := e.s.Update(ctx, "alice", plain.ID, func(cur task.Task) (task.Task, error) {
				cur.FieldsPatch = map[string]json.RawMessage{tc.name: raw(tc.value)}
				return cur, nil
			})
			if tc.want == "" {
				if got := fieldNames(err); !slices.Equal(got, []string{"fields." + tc.name}) {
					t.Fatalf("patch: %v, want a 422 naming fields.%s", err, tc.name)
				}
				again, err := e.s.GetPrimary(ctx, plain.ID)
				if err != nil || again.Version != plain.Version || len(again.Fields) != 0 {
					t.Errorf("refused patch wrote: %+v, %v", again, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("patch: %v", err)
			}
			got, err := e.s.Get(ctx, plain.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(got.Fields[tc.name], tc.want) || got.Version != plain.Version+1 || up.Version != got.Version {
				t.Errorf("after patch: %s v%d (answer v%d), want %s v%d", got.Fields[tc.name], got.Version, up.Version, tc.want, plain.Version+1)
			}
		})
	}
}

// TestFieldValuesMergeAndHistory: a PATCH merges by field (null clears,
// the others stay), a patch that changes nothing writes nothing, and the
// history and the events name each changed field with old and new value.
func TestFieldValuesMergeAndHistory(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	tk := e.create(t, `{"points": 1, "note": "x"}`)
	patch := func(p string) task.Task {
		t.Helper()
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(p), &m); err != nil {
			t.Fatal(err)
		}
		up, err := e.s.Update(ctx, "bob", tk.ID, func(cur task.Task) (task.Task, error) { cur.FieldsPatch = m; return cur, nil })
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	up := patch(`{"points": 2, "note": null}`)
	if got := string(task.AppendFields(nil, up.Fields)); got != `{"points":2}` || up.Version != tk.Version+1 {
		t.Errorf("merged: %s v%d", got, up.Version)
	}
	if same := patch(`{"points": 2.0}`); same.Version != up.Version {
		t.Errorf("an unchanged value wrote version %d", same.Version)
	}
	hist, err := activity.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	page, _, err := hist.List(ctx, tk.ID, uuid.Nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, en := range page {
		var cs []string
		for _, c := range en.Changes {
			if strings.HasPrefix(c.Field, "fields.") {
				cs = append(cs, c.Field+":"+string(c.Old)+">"+string(c.New))
			}
		}
		lines = append(lines, string(en.Kind)+" "+strings.Join(cs, " "))
	}
	want := []string{"updated fields.note:\"x\">null fields.points:1>2", "created fields.note:null>\"x\" fields.points:null>1"}
	if !slices.Equal(lines, want) {
		t.Errorf("history:\n%q\nwant\n%q", lines, want)
	}
}

// TestFieldValuesMove: a move keeps the values both projects define (a
// select by option name) and names the others in DroppedFields; the
// refusing store answers 422 naming them and moves nothing; a required
// field of the target must be given with the move.
func TestFieldValuesMove(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	tk := e.create(t, `{"points": 5, "note": "n", "severity": "`+e.optionID("severity", "High")+`", "tags": ["`+e.optionID("tags", "a")+`"]}`)
	move := func(s *task.Store, p string) (task.Task, error) {
		var m map[string]json.RawMessage
		_ = json.Unmarshal([]byte(p), &m)
		return s.Update(ctx, "alice", tk.ID, func(cur task.Task) (task.Task, error) {
			cur.Project, cur.FieldsPatch = "ops", m
			return cur, nil
		})
	}
	_, err := move(e.s.RefusingDrops(), `{"team": "core"}`)
	if got := fieldNames(err); !slices.Equal(got, []string{"fields.note", "fields.tags"}) {
		t.Fatalf("refused move: %v, want a 422 naming fields.note and fields.tags", err)
	}
	if _, err := move(e.s, `{}`); !slices.Equal(fieldNames(err), []string{"fields.team"}) {
		t.Fatalf("move without the target's required field: %v", err)
	}
	moved, err := move(e.s, `{"team": "core"}`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(moved.DroppedFields, []string{"note", "tags"}) {
		t.Errorf("dropped %v, want [note tags]", moved.DroppedFields)
	}
	got, err := e.s.Get(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	set, err := e.defs.Load(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	sev, _ := set.ByName("severity")
	if got.Project != "ops" || string(got.Fields["points"]) != "5" || string(got.Fields["team"]) != `"core"` ||
		string(got.Fields["severity"]) != `"`+sev.Options[0].ID+`"` || len(got.Fields) != 3 {
		t.Errorf("moved task: %s %s", got.Project, task.AppendFields(nil, got.Fields))
	}
}

// TestFieldValuesFollowDefinitions: a rename shows the new name and a
// delete hides the value on the very next read, with no write to the task.
func TestFieldValuesFollowDefinitions(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	tk := e.create(t, `{"points": 5, "note": "n"}`)
	if _, err := e.defs.Update(ctx, "web", e.web["points"].ID, func(cur field.Definition) (field.Definition, error) {
		cur.Name = "estimate"
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.defs.Delete(ctx, "web", e.web["note"].ID, func(field.Definition) error { return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.GetPrimary(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(task.AppendFields(nil, got.Fields)); s != `{"estimate":5}` || got.Version != tk.Version {
		t.Errorf("after rename and delete: %s v%d", s, got.Version)
	}
}

// TestFieldFilters: each operator against the real database, two
// combined with AND, with the keyset cursor; unknown names, operators a
// type does not allow and ill-typed values are 422s naming field.<name>.
func TestFieldFilters(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	set, err := e.defs.Load(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	titles := map[uuid.UUID]string{}
	low, high, a, b := e.optionID("severity", "Low"), e.optionID("severity", "High"), e.optionID("tags", "a"), e.optionID("tags", "b")
	for i, p := range []string{
		`{"points": 1, "severity": "` + low + `", "ok": true, "start": "2026-01-01", "at": "2026-01-01T00:00:00Z", "note": "a", "tags": ["` + a + `"], "reviewer": "bob"}`,
		`{"points": 5, "severity": "` + high + `", "ok": false, "start": "2026-02-01", "at": "2026-02-01T12:00:00Z", "note": "b", "tags": ["` + a + `", "` + b + `"]}`,
		`{"points": 10, "severity": "` + high + `", "start": "2026-03-01", "at": "2026-03-01T00:00:00+01:00", "note": "c"}`,
		`{}`,
	} {
		d := draft("alice", "t"+string(rune('0'+i)))
		d.Project = "web"
		if err := json.Unmarshal([]byte(p), &d.FieldsPatch); err != nil {
			t.Fatal(err)
		}
		c, err := e.s.Create(ctx, "alice", d)
		if err != nil {
			t.Fatal(err)
		}
		titles[c.ID] = c.Title
	}
	for _, tc := range []struct {
		name string
		qs   []task.FieldQuery
		want string // titles, oldest first; or "422 field.<name>"
	}{
		{"select by name", []task.FieldQuery{{"severity", task.FieldEq, "high"}}, "t1 t2"},
		{"select by id", []task.FieldQuery{{"severity", task.FieldEq, e.optionID("severity", "Low")}}, "t0"},
		{"multi_select has", []task.FieldQuery{{"tags", task.FieldEq, "b"}}, "t1"},
		{"checkbox true", []task.FieldQuery{{"ok", task.FieldEq, "true"}}, "t0"},
		{"checkbox false: unset too", []task.FieldQuery{{"ok", task.FieldEq, "false"}}, "t1 t2 t3"},
		{"text", []task.FieldQuery{{"note", task.FieldEq, "b"}}, "t1"},
		{"user", []task.FieldQuery{{"reviewer", task.FieldEq, "bob"}}, "t0"},
		{"number eq", []task.FieldQuery{{"points", task.FieldEq, "5.0"}}, "t1"},
		{"number gte", []task.FieldQuery{{"points", task.FieldGte, "5"}}, "t1 t2"},
		{"number lte", []task.FieldQuery{{"points", task.FieldLte, "4.5"}}, "t0"},
		{"date range", []task.FieldQuery{{"start", task.FieldGte, "2026-01-15"}, {"start", task.FieldLte, "2026-02-28"}}, "t1"},
		{"datetime in UTC", []task.FieldQuery{{"at", task.FieldLte, "2026-02-28T23:30:00-01:00"}}, "t0 t1 t2"},
		{"AND of two", []task.FieldQuery{{"severity", task.FieldEq, "High"}, {"points", task.FieldGte, "6"}}, "t2"},
		{"unknown field", []task.FieldQuery{{"nope", task.FieldEq, "x"}}, "422 field.nope"},
		{"range on a select", []task.FieldQuery{{"severity", task.FieldGte, "High"}}, "422 field.severity"},
		{"not a number", []task.FieldQuery{{"points", task.FieldEq, "many"}}, "422 field.points"},
		{"unknown option", []task.FieldQuery{{"severity", task.FieldEq, "Medium"}}, "422 field.severity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := task.ResolveFieldFilters(set, tc.qs)
			if strings.HasPrefix(tc.want, "422") {
				if got := fieldNames(err); len(got) != 1 || "422 "+got[0] != tc.want {
					t.Fatalf("got %v, want %s", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Pages of one, so the cursor carries every filter along.
			var got []string
			q := task.ListQuery{Project: "web", Fields: fs, Ascending: true, Limit: 1}
			for {
				page, err := e.s.List(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				for _, it := range page.Items {
					got = append(got, titles[it.ID])
				}
				if page.Next == nil {
					break
				}
				q.After = page.Next
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("listed %q, want %q", strings.Join(got, " "), tc.want)
			}
		})
	}
}

// TestFieldPagesEveryPath: a filtered list is the same tasks in the same
// order whichever way each status branch reads them (task.fieldPageSQL):
// the whole walk of a project with few tasks of the status left past the
// cursor, the walk of a window that holds a page of a common value, and
// the GIN index for a value too rare for the window. 70 tasks in one
// project, read in pages of 2 (a window of 30 rows) both ways, with and
// without a status, against the filter applied here.
func TestFieldPagesEveryPath(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	set, err := e.defs.Load(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	high := e.optionID("severity", "High")
	type made struct {
		title  string
		status task.Status
		high   bool
		needle bool
		ok     bool
	}
	var all []made // oldest first
	for i := range 70 {
		m := made{title: fmt.Sprintf("t%02d", i), status: task.StatusTodo, high: i%3 == 0, needle: i == 5 || i == 61, ok: i == 2 || i == 40 || i == 41}
		if i%7 == 0 {
			m.status = task.StatusDone
		}
		values := map[string]any{"note": "hay"}
		if m.high {
			values["severity"] = high
		}
		if m.needle {
			values["note"] = "needle"
		}
		if m.ok {
			values["ok"] = true
		}
		d := draft("alice", m.title)
		d.Project, d.Status = "web", m.status
		b, _ := json.Marshal(values)
		if err := json.Unmarshal(b, &d.FieldsPatch); err != nil {
			t.Fatal(err)
		}
		if _, err := e.s.Create(ctx, "alice", d); err != nil {
			t.Fatal(err)
		}
		all = append(all, m)
	}
	for _, tc := range []struct {
		name string
		qs   []task.FieldQuery
		keep func(made) bool
	}{
		{"common value (a third)", []task.FieldQuery{{"severity", task.FieldEq, "High"}}, func(m made) bool { return m.high }},
		{"rare value (two)", []task.FieldQuery{{"note", task.FieldEq, "needle"}}, func(m made) bool { return m.needle }},
		{"rare value and a common one", []task.FieldQuery{{"ok", task.FieldEq, "true"}, {"severity", task.FieldEq, "High"}}, func(m made) bool { return m.ok && m.high }},
		{"common value, not checked", []task.FieldQuery{{"severity", task.FieldEq, "High"}, {"ok", task.FieldEq, "false"}}, func(m made) bool { return m.high && !m.ok }},
	} {
		fs, err := task.ResolveFieldFilters(set, tc.qs)
		if err != nil {
			t.Fatal(err)
		}
		for _, statuses := range [][]task.Status{nil, {task.StatusTodo}} {
			for _, asc := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s, statuses %v, ascending %v", tc.name, statuses, asc), func(t *testing.T) {
					var want []string
					for _, m := range all {
						if tc.keep(m) && (statuses == nil || m.status == statuses[0]) {
							want = append(want, m.title)
						}
					}
					if !asc {
						slices.Reverse(want)
					}
					var got []string
					q := task.ListQuery{Project: "web", Statuses: statuses, Fields: fs, Ascending: asc, Limit: 2}
					for range 100 {
						page, err := e.s.List(ctx, q)
						if err != nil {
							t.Fatal(err)
						}
						for _, it := range page.Items {
							got = append(got, it.Title)
						}
						if page.Next == nil {
							break
						}
						q.After = page.Next
					}
					if !slices.Equal(got, want) {
						t.Errorf("listed %v\nwant   %v", got, want)
					}
				})
			}
		}
	}
}

// TestFieldValuesBulk: a bulk change (PATCH /tasks, and the ingest
// commands' path through the same patch) validates values as a single
// PATCH does: one bad value refuses the whole change, naming the field.
func TestFieldValuesBulk(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	ids := []uuid.UUID{e.create(t, `{}`).ID, e.create(t, `{}`).ID}
	bulk := func(v string) ([]task.Task, error) {
		return e.s.UpdateMany(ctx, "alice", ids, func(cur task.Task) (task.Task, error) {
			cur.FieldsPatch = map[string]json.RawMessage{"points": raw(v)}
			return cur, nil
		})
	}
	_, err := bulk(`"x"`)
	var be *task.BulkError
	if !errors.As(err, &be) || len(be.Failures) != 2 || !slices.Equal(fieldNames(be.Failures[0].Err), []string{"fields.points"}) {
		t.Fatalf("bad bulk: %v", err)
	}
	out, err := bulk(`8`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range out {
		got, err := e.s.Get(ctx, tk.ID)
		if err != nil || string(got.Fields["points"]) != "8" || got.Version != 2 || string(tk.Fields["points"]) != "8" {
			t.Errorf("after bulk: %s v%d (%v)", got.Fields["points"], got.Version, err)
		}
	}
}

// TestExportFieldsAcrossProjects: an export of several projects has one
// column per field name, placed and typed by the first project's field,
// and a select column knows every project's options of that name, so a
// task of either project shows its option's name, not its id.
func TestExportFieldsAcrossProjects(t *testing.T) {
	e := newFieldsEnv(t)
	cols, err := e.s.ExportFields(t.Context(), task.ExportQuery{Only: &task.Scope{Projects: []string{"web", "ops"}}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var severity field.Definition
	for _, c := range cols {
		names = append(names, c.Name)
		if c.Name == "severity" {
			severity = c
		}
	}
	slices.Sort(names)
	want := []string{"at", "link", "note", "ok", "points", "reviewer", "severity", "start", "tags", "team"}
	if !slices.Equal(names, want) {
		t.Fatalf("columns %v, want %v", names, want)
	}
	var options []string
	for _, o := range severity.Options {
		options = append(options, o.Name)
	}
	if severity.Project != "ops" || !slices.Equal(options, []string{"high", "critical", "Low", "High"}) {
		t.Errorf("severity column from %s with options %v, want ops' then web's", severity.Project, options)
	}
	web, err := e.s.ExportFields(t.Context(), task.ExportQuery{Project: "web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range web {
		if c.Name == "severity" && len(c.Options) != 2 {
			t.Errorf("one project's export: severity options %v, want web's two", c.Options)
		}
	}
}

// TestReminderEventsCarryFieldValues: the reminder tick's events carry
// the task's custom field values by name, as every other task event does.
func TestReminderEventsCarryFieldValues(t *testing.T) {
	e := newFieldsEnv(t)
	now := time.Now()
	due := now.Add(2 * time.Hour)
	d := draft("alice", "Reminded")
	d.Project, d.DueAt, d.Reminders = "web", &due, []string{"-PT1H"}
	values := `{"note": "call back", "severity": "` + e.optionID("severity", "High") + `"}`
	if err := json.Unmarshal([]byte(values), &d.FieldsPatch); err != nil {
		t.Fatal(err)
	}
	c, err := e.s.Create(t.Context(), "alice", d)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := e.s.FireReminders(t.Context(), now.Add(61*time.Minute), 100); err != nil || f.Reminders != 1 {
		t.Fatalf("fired %+v, %v; want one reminder", f, err)
	}
	var got map[string]json.RawMessage
	for _, ev := range outboxEvents(t, e.db) {
		if ev.Key == c.ID.String() && ev.Type == events.TaskReminder {
			var data events.TaskReminderData
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			got = data.Task.Fields
		}
	}
	if len(got) != 2 || !sameJSON(got["note"], `"call back"`) || !sameJSON(got["severity"], `"`+e.optionID("severity", "High")+`"`) {
		t.Errorf("reminder's fields %s", got)
	}
}

// TestFieldWritesOnOneConnection: a write loads its project's definitions
// in its own transaction. Loaded from the pool instead, each write would
// hold one connection and wait for a second, and concurrent writes on a
// full pool would wait for ever (TestConcurrentDelivery in shared/ingest
// hung so). On a pool of one connection, creates, a move and a bulk
// change with values must all finish.
func TestFieldWritesOnOneConnection(t *testing.T) {
	e := newFieldsEnv(t)
	cfg := pgtest.NewConfig(t)
	cfg.MaxConns = 1
	db, err := pg.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The fresh database of cfg gets the same projects and fields.
	one := fieldsEnv{db: db, web: map[string]field.Definition{}}
	if one.s, err = task.NewStore(db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Primary.Exec(t.Context(), `INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x'), ('ops', 'Ops', 'x')`); err != nil {
		t.Fatal(err)
	}
	defs, err := field.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"note", "points"} {
		d := e.web[name]
		d.CreatedBy = "x"
		if _, err := defs.Create(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for i := range 4 {
		wg.Go(func() {
			d := draft("alice", fmt.Sprintf("T%d", i))
			d.Project, d.FieldsPatch = "web", map[string]json.RawMessage{"note": raw(`"n"`), "points": raw(`2`)}
			c, err := one.s.Create(ctx, "alice", d)
			if err != nil {
				errc <- err
				return
			}
			_, err = one.s.Update(ctx, "alice", c.ID, func(cur task.Task) (task.Task, error) {
				cur.Project, cur.FieldsPatch = "ops", nil
				return cur, nil
			})
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("a write on one connection: %v", err)
		}
	}
}

// TestCreateRequiredFields: a create with no values at all takes the
// round trip that inserts before the check; a project with a required
// field must still refuse it, naming the field, with nothing written (no
// task, history or event), as it refuses values that lack it.
func TestCreateRequiredFields(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name, project, fields string // fields "": none given
		wantErr               []string
	}{
		{"no values, none required", "web", "", nil},
		{"no values, one required", "ops", "", []string{"fields.team"}},
		{"values without the required one", "ops", `{"points": 3}`, []string{"fields.team"}},
		{"the required one given", "ops", `{"team": "infra"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := draft("alice", tc.name)
			d.Project = tc.project
			if tc.fields != "" {
				if err := json.Unmarshal([]byte(tc.fields), &d.FieldsPatch); err != nil {
					t.Fatal(err)
				}
			}
			c, err := e.s.Create(ctx, "alice", d)
			if got := fieldNames(err); !reflect.DeepEqual(got, tc.wantErr) {
				t.Fatalf("Create: %v, naming %v; want %v", err, got, tc.wantErr)
			}
			var tasks, history, outbox int
			const q = `
SELECT (SELECT count(*) FROM tasks WHERE title = $1),
       (SELECT count(*) FROM task_activity a JOIN tasks t ON t.id = a.task_id WHERE t.title = $1),
       (SELECT count(*) FROM outbox WHERE data->'task'->>'title' = $1)`
			if err := e.db.Primary.QueryRow(ctx, q, tc.name).Scan(&tasks, &history, &outbox); err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.wantErr != nil {
				want = 0
			}
			if tasks != want || history != want || outbox != want {
				t.Errorf("after Create: %d tasks, %d history lines, %d events; want %d each", tasks, history, outbox, want)
			}
			if err == nil && c.Project != tc.project {
				t.Errorf("created in %q", c.Project)
			}
		})
	}
}

// TestGatedFieldPagePlansOnce: a filtered page of a big status (the gate
// of fieldPageSQL) runs its generic plan from the first time, which
// PostgreSQL would never choose on its own (it costs the arm the gate
// skips), and the setting that forces it does not outlive the query.
func TestGatedFieldPagePlansOnce(t *testing.T) {
	t.Parallel()
	e := newFieldsEnv(t)
	ctx := t.Context()
	high := e.optionID("severity", "High")
	for i := range 40 { // todo is then past a window of pages of 2
		d := draft("alice", fmt.Sprintf("g%02d", i))
		d.Project = "web"
		if i%3 == 0 {
			d.FieldsPatch = map[string]json.RawMessage{"severity": raw(`"` + high + `"`)}
		}
		if _, err := e.s.Create(ctx, "alice", d); err != nil {
			t.Fatal(err)
		}
	}
	// One connection, so the prepared statement and the setting seen
	// afterwards are the lists'.
	cfg := e.db.Replica.Config().Copy()
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := task.NewStore(&pg.DB{Primary: pool, Replica: pool})
	if err != nil {
		t.Fatal(err)
	}
	set, err := e.defs.Load(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := task.ResolveFieldFilters(set, []task.FieldQuery{{"severity", task.FieldEq, "High"}})
	if err != nil {
		t.Fatal(err)
	}
	q := task.ListQuery{Project: "web", Statuses: []task.Status{task.StatusTodo}, Fields: fs, Limit: 2}
	const runs = 7
	for range runs {
		page, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 2 {
			t.Fatalf("page of %d tasks, want 2", len(page.Items))
		}
		page.Release()
	}
	var generic, custom int64
	var mode string
	const stats = `
SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0), current_setting('plan_cache_mode')
FROM pg_prepared_statements
WHERE statement LIKE 'WITH gate%'`
	if err := pool.QueryRow(ctx, stats).Scan(&generic, &custom, &mode); err != nil {
		t.Fatal(err)
	}
	// Only a pool that prepares (cache_statement) keeps plans; behind
	// PgBouncer (exec) nothing is prepared, so nothing is forced either.
	want := int64(0)
	if cfg.ConnConfig.DefaultQueryExecMode == pgx.QueryExecModeCacheStatement {
		want = runs
	}
	if generic != want || custom != 0 {
		t.Errorf("the gated page planned %d generic and %d custom plans in %d runs, want %d and 0", generic, custom, runs, want)
	}
	if mode != "auto" {
		t.Errorf("plan_cache_mode after the lists: %q, want auto", mode)
	}
}
