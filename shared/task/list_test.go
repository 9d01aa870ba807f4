package task_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// insertAt stores tasks with the created_at they carry, which Create
// leaves to the database, so lists have a known order.
func insertAt(t testing.TB, db *pg.DB, tasks ...task.Task) {
	t.Helper()
	const q = `
INSERT INTO tasks (id, title, description, status, priority, due_at, owner_id, assignee_id, labels, created_at, updated_at, project)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, NULLIF($11, ''))`
	batch := &pgx.Batch{}
	for _, tk := range tasks {
		labels := tk.Labels
		if labels == nil {
			labels = []string{}
		}
		batch.Queue(q, tk.ID, tk.Title, tk.Description, tk.Status, tk.Priority, tk.DueAt, tk.OwnerID, tk.AssigneeID, labels, tk.CreatedAt, tk.Project)
	}
	if err := db.Primary.SendBatch(context.Background(), batch).Close(); err != nil {
		t.Fatal(err)
	}
}

// walk lists every page of q, passing each cursor through its string form
// as a client would, and returns the ids in order.
func walk(t *testing.T, s *task.Store, q task.ListQuery) (ids []uuid.UUID, pages int) {
	t.Helper()
	for {
		page, err := s.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.Items == nil {
			t.Fatal("Items is nil, want an empty slice")
		}
		if len(page.Items) > q.Limit {
			t.Fatalf("page of %d items, limit %d", len(page.Items), q.Limit)
		}
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		// As the list route does: each page's memory serves a later one,
		// here and in the parallel tests, whose pages must stay right.
		next := page.Next
		page.Release()
		if page.Items != nil {
			t.Fatal("Items still set after Release")
		}
		page.Release() // twice is harmless
		if next == nil {
			return ids, pages
		}
		if len(ids) != pages*q.Limit {
			t.Fatalf("short page (%d of %d) with a next cursor", len(ids)-(pages-1)*q.Limit, q.Limit)
		}
		c, err := task.DecodeCursor(next.Encode())
		if err != nil {
			t.Fatal(err)
		}
		q.After = &c
		if pages > 1000 {
			t.Fatal("no end of pages")
		}
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	day := func(d int) *time.Time { v := t0.AddDate(0, 0, d); return &v }
	mk := func(i int, title, owner string, assignee *string, st task.Status, due *time.Time, labels ...string) task.Task {
		return task.Task{
			ID: uuid.Must(uuid.NewV7()), Title: title, Description: "task " + title, Status: st, Priority: task.PriorityMedium,
			DueAt: due, OwnerID: owner, AssigneeID: assignee, Labels: labels, CreatedAt: t0.Add(time.Duration(i) * time.Minute),
		}
	}
	tasks := []task.Task{
		mk(0, "Fix login bug", "alice", nil, task.StatusTodo, day(1), "backend"),
		mk(1, "Write quarterly report", "alice", ptr("bob"), task.StatusInProgress, day(10), "frontend"),
		mk(2, "Migrate kafka cluster", "bob", ptr("alice"), task.StatusBlocked, nil, "backend", "ops"),
		mk(3, "Call the customer", "bob", nil, task.StatusDone, day(5)),
		mk(4, "Review invoice", "carol", ptr("carol"), task.StatusTodo, day(20)),
		mk(5, "Plan the offsite", "carol", ptr("alice"), task.StatusCancelled, day(5), "ops"),
		mk(6, "Rotate the keys", "alice", ptr("alice"), task.StatusTodo, nil, "bug"),
		mk(7, "Upgrade postgres", "dave", nil, task.StatusTodo, day(2), "backend"),
	}
	insertAt(t, db, tasks...)
	ids := func(idx ...int) []uuid.UUID {
		out := []uuid.UUID{}
		for _, i := range idx {
			out = append(out, tasks[i].ID)
		}
		return out
	}
	tests := []struct {
		name string
		q    task.ListQuery
		want []uuid.UUID
	}{
		{"all newest first", task.ListQuery{}, ids(7, 6, 5, 4, 3, 2, 1, 0)},
		{"all oldest first", task.ListQuery{Ascending: true}, ids(0, 1, 2, 3, 4, 5, 6, 7)},
		{"one status", task.ListQuery{Statuses: []task.Status{task.StatusTodo}}, ids(7, 6, 4, 0)},
		{"several statuses", task.ListQuery{Statuses: []task.Status{task.StatusBlocked, task.StatusDone}}, ids(3, 2)},
		{"repeated status", task.ListQuery{Statuses: []task.Status{task.StatusDone, task.StatusDone}}, ids(3)},
		{"owner", task.ListQuery{OwnerID: "bob"}, ids(3, 2)},
		{"owner and status", task.ListQuery{OwnerID: "alice", Statuses: []task.Status{task.StatusTodo}, Ascending: true}, ids(0, 6)},
		{"assignee", task.ListQuery{AssigneeID: "alice"}, ids(6, 5, 2)},
		{"label", task.ListQuery{Label: "backend"}, ids(7, 2, 0)},
		{"label nobody has", task.ListQuery{Label: "nope"}, ids()},
		{"due before", task.ListQuery{DueBefore: day(5)}, ids(7, 0)},
		{"due after, inclusive", task.ListQuery{DueAfter: day(5)}, ids(5, 4, 3, 1)},
		{"due range", task.ListQuery{DueAfter: day(2), DueBefore: day(11)}, ids(7, 5, 3, 1)},
		{"full text", task.ListQuery{Query: "kafka"}, ids(2)},
		{"full text stems", task.ListQuery{Query: "reviewing invoices"}, ids(4)},
		{"full text websearch", task.ListQuery{Query: `"quarterly report" or customer`}, ids(3, 1)},
		{"full text negation", task.ListQuery{Query: "task -invoice", Statuses: []task.Status{task.StatusTodo}}, ids(7, 6, 0)},
		{"full text stop words only", task.ListQuery{Query: "the"}, ids()},
		// alice owns 0, 1, 6 and is assigned 2, 5 and (herself) 6.
		{"visible to member", task.ListQuery{Only: own("alice")}, ids(6, 5, 2, 1, 0)},
		{"visible to member, oldest first", task.ListQuery{Only: own("alice"), Ascending: true}, ids(0, 1, 2, 5, 6)},
		{"visible to member, self-assigned once", task.ListQuery{Only: own("carol")}, ids(5, 4)},
		{"visible to member with statuses", task.ListQuery{Only: own("alice"), Statuses: []task.Status{task.StatusTodo, task.StatusBlocked}}, ids(6, 2, 0)},
		{"visible to member, owned by other", task.ListQuery{Only: own("alice"), OwnerID: "bob"}, ids(2)},
		{"visible to member, owned by self", task.ListQuery{Only: own("alice"), OwnerID: "alice"}, ids(6, 1, 0)},
		{"visible to member, assigned to self", task.ListQuery{Only: own("alice"), AssigneeID: "alice"}, ids(6, 5, 2)},
		{"visible to member, assigned to other", task.ListQuery{Only: own("alice"), AssigneeID: "bob"}, ids(1)},
		{"visible to member, owner and assignee others", task.ListQuery{Only: own("alice"), OwnerID: "bob", AssigneeID: "bob"}, ids()},
		{"visible to member with label and due", task.ListQuery{Only: own("alice"), Label: "ops", DueBefore: day(6)}, ids(5)},
		{"visible to stranger", task.ListQuery{Only: own("mallory")}, ids()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.q.Limit = task.MaxListLimit
			page, err := s.List(t.Context(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if page.Next != nil {
				t.Errorf("Next = %+v on the only page", page.Next)
			}
			got := []uuid.UUID{}
			for _, it := range page.Items {
				got = append(got, it.ID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("items are whole rows", func(t *testing.T) {
		t.Parallel()
		page, err := s.List(t.Context(), task.ListQuery{OwnerID: "carol", Statuses: []task.Status{task.StatusCancelled}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(t.Context(), tasks[5].ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]task.Task{got}, page.Items); diff != "" {
			t.Errorf("(-get +list):\n%s", diff)
		}
	})

	// Rows are scanned into reused targets: no item may share another's
	// labels, due date or assignee.
	t.Run("every item is its own row", func(t *testing.T) {
		t.Parallel()
		page, err := s.List(t.Context(), task.ListQuery{Limit: task.MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != len(tasks) {
			t.Fatalf("%d items, want %d", len(page.Items), len(tasks))
		}
		for _, it := range page.Items {
			want, err := s.Get(t.Context(), it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, it); diff != "" {
				t.Errorf("%s (-get +list):\n%s", it.ID, diff)
			}
		}
	})
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		n         int
		limit     int
		gap       time.Duration // between created_at values; 0 means all equal
		wantPages int
	}{
		{"exact multiple of limit", 10, 5, time.Minute, 2},
		{"remainder on last page", 10, 3, time.Minute, 4},
		{"one page bigger than needed", 10, 20, time.Minute, 1},
		{"limit one", 5, 1, time.Minute, 5},
		{"empty", 0, 5, time.Minute, 1},
		{"equal created_at, order by id", 9, 2, 0, 5},
		{"microseconds apart", 9, 2, time.Microsecond, 5},
	}
	for _, tt := range tests {
		for _, asc := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/asc=%t", tt.name, asc), func(t *testing.T) {
				t.Parallel()
				s, db := newStore(t)
				tasks := make([]task.Task, tt.n)
				for i := range tasks {
					tasks[i] = draft("alice", fmt.Sprintf("t%d", i))
					tasks[i].ID = uuid.New() // random, so id order differs from insert order
					tasks[i].CreatedAt = t0.Add(time.Duration(i) * tt.gap)
				}
				insertAt(t, db, tasks...)

				// The expected order, from the database itself.
				dir := "DESC"
				if asc {
					dir = "ASC"
				}
				rows, _ := db.Primary.Query(t.Context(), "SELECT id FROM tasks ORDER BY created_at "+dir+", id "+dir)
				want, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range []task.ListQuery{
					{Limit: tt.limit, Ascending: asc},
					{Limit: tt.limit, Ascending: asc, Only: own("alice")},
					{Limit: tt.limit, Ascending: asc, Statuses: []task.Status{task.StatusTodo, task.StatusDone}},
				} {
					got, pages := walk(t, s, q)
					if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("%+v: ids (-want +got):\n%s", q, diff)
					}
					if pages != tt.wantPages {
						t.Errorf("%+v: %d pages, want %d", q, pages, tt.wantPages)
					}
				}
			})
		}
	}
}

func TestListRejects(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	desc := task.Cursor{CreatedAt: time.Now(), ID: uuid.New()}
	asc := desc
	asc.Ascending = true
	tests := []struct {
		name      string
		q         task.ListQuery
		badCursor bool
	}{
		{"limit zero", task.ListQuery{Limit: 0}, false},
		{"limit above max", task.ListQuery{Limit: task.MaxListLimit + 1}, false},
		{"newest-first cursor on oldest-first list", task.ListQuery{Limit: 5, Ascending: true, After: &desc}, true},
		{"oldest-first cursor on newest-first list", task.ListQuery{Limit: 5, After: &asc}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.List(t.Context(), tt.q)
			if err == nil || errors.Is(err, task.ErrBadCursor) != tt.badCursor {
				t.Errorf("err = %v, want error (bad cursor: %t)", err, tt.badCursor)
			}
		})
	}
}

// Paging while tasks are being created returns every task that existed
// before exactly once; a keyset cursor does not shift as rows arrive.
func TestListStableUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	for _, asc := range []bool{false, true} {
		for _, visibleTo := range []string{"", "alice"} {
			t.Run(fmt.Sprintf("asc=%t/visible=%q", asc, visibleTo), func(t *testing.T) {
				t.Parallel()
				s, db := newStore(t)
				t0 := time.Now().Add(-time.Hour)
				before := make([]task.Task, 60)
				for i := range before {
					before[i] = draft("alice", fmt.Sprintf("old %d", i))
					if i%3 == 0 {
						before[i].OwnerID, before[i].AssigneeID = "bob", ptr("alice")
					}
					before[i].ID = uuid.New()
					before[i].CreatedAt = t0.Add(time.Duration(i/2) * time.Second) // pairs share a time
				}
				insertAt(t, db, before...)

				ctx, stop := context.WithCancel(t.Context())
				var wg sync.WaitGroup
				inserted := 0
				wg.Go(func() {
					for ctx.Err() == nil {
						d := draft("alice", "new")
						if inserted%2 == 0 {
							d.OwnerID, d.AssigneeID = "bob", ptr("alice")
						}
						if _, err := s.Create(ctx, "", d); err != nil && ctx.Err() == nil {
							t.Error(err)
							return
						}
						inserted++
					}
				})

				q := task.ListQuery{Limit: 7, Ascending: asc, Only: own(visibleTo)}
				seen := map[uuid.UUID]int{}
				for pages := 0; ; pages++ {
					page, err := s.List(t.Context(), q)
					if err != nil {
						t.Fatal(err)
					}
					for _, it := range page.Items {
						seen[it.ID]++
					}
					// Oldest first would chase the new rows: stop once past
					// the old ones. Newest first starts with the new rows
					// inserted before its first page, then never meets one
					// again, and ends at the oldest.
					if page.Next == nil || asc && page.Next.CreatedAt.After(t0.Add(time.Minute)) {
						break
					}
					q.After = page.Next
					time.Sleep(time.Millisecond) // let inserts land between pages
				}
				stop()
				wg.Wait()

				for _, b := range before {
					if seen[b.ID] != 1 {
						t.Errorf("task %s (%s) seen %d times", b.ID, b.Title, seen[b.ID])
					}
				}
				for id, n := range seen {
					if n > 1 {
						t.Errorf("task %s seen %d times", id, n)
					}
				}
				if inserted == 0 {
					t.Error("no concurrent inserts happened")
				}
				t.Logf("%d rows inserted while paging", inserted)
			})
		}
	}
}

// Under the default cache_statement mode, a list with a subject or filter
// value must not leave a prepared statement behind: it could switch to a
// generic plan that suits an average subject (see List). A list by status
// alone is prepared, and PostgreSQL must actually run a first page on its
// generic plan, not plan it again on every run (it did while the limit was
// a parameter). Get, as a control, is prepared.
func TestListPreparesOnlyValueFreeShapes(t *testing.T) {
	t.Parallel()
	_, shared := newStore(t)
	db, err := pg.Open(t.Context(), pg.Config{
		URL: shared.Primary.Config().ConnString(), MaxConns: 1, QueryExecMode: "cache_statement",
		ConnectTimeout: 10 * time.Second, MaxConnLifetime: time.Hour, MaxConnIdleTime: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	due := time.Now()
	for range 8 {
		for _, q := range []task.ListQuery{
			{Only: own("alice"), Limit: 10},
			{OwnerID: "bob", Statuses: []task.Status{task.StatusDone}, Limit: 10},
			{Label: "ops", Statuses: []task.Status{task.StatusDone}, Limit: 10},
			{DueBefore: &due, Limit: 10},
			{Query: "report", Limit: 10},
			{Statuses: []task.Status{task.StatusDone}, Limit: 10},
			{Statuses: []task.Status{task.StatusBlocked, task.StatusTodo}, Limit: 10},
			{Statuses: []task.Status{task.StatusDone}, Limit: 10, After: &task.Cursor{CreatedAt: due, ID: uuid.New()}},
		} {
			if _, err := s.List(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Get(ctx, uuid.New()); !errors.Is(err, task.ErrNotFound) {
			t.Fatal(err)
		}
	}
	type prepared struct {
		SQL             string
		Generic, Custom int64
	}
	rows, _ := db.Replica.Query(ctx, "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
	stmts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[prepared])
	if err != nil {
		t.Fatal(err)
	}
	var withValues, byStatus, scoped, get int
	var sqls []string
	for _, p := range stmts {
		st := p.SQL
		sqls = append(sqls, st)
		switch {
		case !strings.Contains(st, "ORDER BY created_at"):
			if strings.Contains(st, "WHERE id = $1") {
				get++
			}
		case strings.Contains(st, "project = $1"):
			// A member's scope: prepared, and planned generically once
			// PostgreSQL has seen (five custom plans) that it costs no more.
			scoped++
			if p.Generic+p.Custom != 8 || p.Generic == 0 {
				t.Errorf("%d generic and %d custom plans in 8 runs, want generic ones after the first:\n%s", p.Generic, p.Custom, st)
			}
		case strings.Contains(st, "owner_id =") || strings.Contains(st, "assignee_id =") || strings.Contains(st, "labels @>") || strings.Contains(st, "due_at <") || strings.Contains(st, "search @@"):
			withValues++
		default:
			byStatus++
			// A first page has no parameter: planned once, for every run.
			if !strings.Contains(st, "(created_at, id)") && (p.Generic != 8 || p.Custom != 0) {
				t.Errorf("%d generic and %d custom plans in 8 runs, want the generic plan every time:\n%s", p.Generic, p.Custom, st)
			}
		}
	}
	if withValues != 0 || byStatus != 3 || scoped != 1 || get != 1 {
		t.Errorf("prepared: %d lists with values, %d by status, %d scoped, %d get; want 0, 3, 1 and 1:\n%s", withValues, byStatus, scoped, get, strings.Join(sqls, "\n---\n"))
	}
}

// TestListProjects lists as a task-member with project roles: the tasks of
// its projects and those assigned to it elsewhere, each once, whatever the
// project filter, and never another project's.
func TestListProjects(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	if _, err := db.Primary.Exec(t.Context(), `INSERT INTO projects (key, name, created_by) VALUES ('red', 'Red', 'x'), ('blue', 'Blue', 'x'), ('green', 'Green', 'x')`); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	mk := func(i int, project, owner string, assignee *string, st task.Status) task.Task {
		return task.Task{ID: uuid.Must(uuid.NewV7()), Project: project, Title: fmt.Sprint("t", i), Status: st,
			Priority: task.PriorityLow, OwnerID: owner, AssigneeID: assignee, CreatedAt: t0.Add(time.Duration(i) * time.Minute)}
	}
	tasks := []task.Task{
		mk(0, "red", "zed", nil, task.StatusTodo),
		mk(1, "blue", "zed", nil, task.StatusTodo),
		mk(2, "blue", "zed", ptr("me"), task.StatusDone), // assigned outside my projects
		mk(3, "red", "me", ptr("me"), task.StatusDone),   // assigned inside: listed once
		mk(4, "", "me", nil, task.StatusTodo),            // my personal project
		mk(5, "green", "zed", nil, task.StatusBlocked),
		mk(6, "", "zed", ptr("me"), task.StatusTodo), // in zed's personal project, assigned to me
		mk(7, "", "zed", nil, task.StatusTodo),
	}
	insertAt(t, db, tasks...)
	ids := func(idx ...int) []uuid.UUID {
		out := []uuid.UUID{}
		for _, i := range idx {
			out = append(out, tasks[i].ID)
		}
		return out
	}
	me := &task.Scope{Projects: []string{"~me", "green", "red"}, Assignee: "me"}
	// Past maxProjectBranches the projects are one branch: the same rows.
	many := &task.Scope{Projects: slices.Clone(me.Projects), Assignee: "me"}
	for i := range 70 {
		many.Projects = append(many.Projects, fmt.Sprintf("p%d", i))
	}
	tests := []struct {
		name string
		q    task.ListQuery
		want []uuid.UUID
	}{
		{"everything visible", task.ListQuery{Only: me}, ids(6, 5, 4, 3, 2, 0)},
		{"oldest first", task.ListQuery{Only: me, Ascending: true}, ids(0, 2, 3, 4, 5, 6)},
		{"one of my projects", task.ListQuery{Only: me, Project: "red"}, ids(3, 0)},
		{"my personal project", task.ListQuery{Only: me, Project: "~me"}, ids(4)},
		{"a project not mine: only what is assigned to me", task.ListQuery{Only: me, Project: "blue"}, ids(2)},
		{"another's personal project", task.ListQuery{Only: me, Project: "~zed"}, ids(6)},
		{"a project that does not exist", task.ListQuery{Only: me, Project: "nope"}, ids()},
		{"statuses", task.ListQuery{Only: me, Statuses: []task.Status{task.StatusDone}}, ids(3, 2)},
		{"assignee filter", task.ListQuery{Only: me, AssigneeID: "me"}, ids(6, 3, 2)},
		{"someone else as assignee", task.ListQuery{Only: me, AssigneeID: "zed"}, ids()},
		{"owner filter", task.ListQuery{Only: me, OwnerID: "zed"}, ids(6, 5, 2, 0)},
		{"no projects, only assigned", task.ListQuery{Only: &task.Scope{Assignee: "me"}}, ids(6, 3, 2)},
		{"nothing", task.ListQuery{Only: &task.Scope{}}, ids()},
		{"many projects", task.ListQuery{Only: many}, ids(6, 5, 4, 3, 2, 0)},
		{"many projects, statuses", task.ListQuery{Only: many, Statuses: []task.Status{task.StatusTodo, task.StatusBlocked}}, ids(6, 5, 4, 0)},
		{"many projects, one of them", task.ListQuery{Only: many, Project: "red"}, ids(3, 0)},
		{"every task, one project", task.ListQuery{Project: "blue"}, ids(2, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, limit := range []int{1, 2, task.MaxListLimit} {
				tt.q.Limit = limit
				got, _ := walk(t, s, tt.q)
				if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("limit %d: ids (-want +got):\n%s", limit, diff)
				}
			}
		})
	}
}
