package relation_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/relation"
	"github.com/taskfn/taskfn/shared/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func tasks(t *testing.T, db *pg.DB, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for range n {
		id := uuid.Must(uuid.NewV7())
		if _, err := db.Primary.Exec(context.Background(), `INSERT INTO tasks (id, title, status, priority, owner_id) VALUES ($1, 't', 'todo', 'low', 'alice')`, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func stores(t *testing.T, db *pg.DB) (*relation.Store, *task.Store) {
	t.Helper()
	ts, err := task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := relation.NewStore(db, ts)
	if err != nil {
		t.Fatal(err)
	}
	return rs, ts
}

func TestRules(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	rs, _ := stores(t, db)
	ids := tasks(t, db, 4)
	a, b, c, d := ids[0], ids[1], ids[2], ids[3]
	add := func(x uuid.UUID, k relation.Kind, y uuid.UUID) error {
		_, err := rs.Add(ctx, "alice", x, k, y, nil)
		return err
	}
	for _, step := range []struct {
		name string
		err  error
		want string // "" ok, else the problem's kind or slug
	}{
		{"a child of b", add(a, relation.SubtaskOf, b), ""},
		{"b child of c", add(b, relation.SubtaskOf, c), ""},
		{"c child of a: a cycle", add(c, relation.SubtaskOf, a), "relation-cycle"},
		{"a child of d: a second parent", add(a, relation.SubtaskOf, d), "has-parent"},
		{"a child of b again", add(a, relation.SubtaskOf, b), "relation-exists"},
		{"a blocks c", add(a, relation.Blocks, c), ""},
		{"c blocks a: a cycle of blockers", add(c, relation.Blocks, a), "relation-cycle"},
		{"c relates to a: no cycle rule", add(c, relation.RelatesTo, a), ""},
		{"a relates to c too", add(a, relation.RelatesTo, c), ""},
		{"self", add(d, relation.Duplicates, d), "validation"},
		{"a task that does not exist", add(d, relation.Duplicates, uuid.New()), "not-found"},
	} {
		got := ""
		var e *errs.Error
		switch {
		case step.err == nil:
		case errors.As(step.err, &e) && e.Slug != "":
			got = e.Slug
		case errors.Is(step.err, relation.ErrSelf):
			got = "validation"
		case errs.KindOf(step.err) == errs.NotFound:
			got = "not-found"
		default:
			got = step.err.Error()
		}
		if got != step.want {
			t.Errorf("%s: %q (%v), want %q", step.name, got, step.err, step.want)
		}
	}
	of, err := rs.Of(ctx, a)
	if err != nil || len(of) != 4 || of[0].TaskID != a || of[len(of)-1].TaskID != c {
		t.Fatalf("a's relations %+v %v", of, err)
	}
	// Deleting the parent frees the child; the history keeps every change.
	if _, err := db.Primary.Exec(ctx, `DELETE FROM tasks WHERE id = $1`, b); err != nil {
		t.Fatal(err)
	}
	if err := add(a, relation.SubtaskOf, d); err != nil {
		t.Fatalf("a new parent after the old one was deleted: %v", err)
	}
	if err := rs.Remove(ctx, "alice", a, relation.SubtaskOf, d, nil); err != nil {
		t.Fatal(err)
	}
	if err := rs.Remove(ctx, "alice", a, relation.SubtaskOf, d, nil); !errors.Is(err, relation.ErrNotFound) {
		t.Fatalf("removed twice: %v", err)
	}
	var lines int
	if err := db.Primary.QueryRow(ctx, `SELECT count(*) FROM task_activity WHERE task_id = $1 AND kind IN ('relation_added', 'relation_removed')`, d).Scan(&lines); err != nil || lines != 2 {
		t.Fatalf("d's history: %d relation lines (%v), want 2", lines, err)
	}
}

// TestNoCycleUnderRaces adds inverse relations concurrently, thousands of
// times: one of each pair may win, never both.
func TestNoCycleUnderRaces(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	rs, _ := stores(t, db)
	ids := tasks(t, db, 2)
	x, y := ids[0], ids[1]
	const rounds = 1000
	var both atomic.Int64
	for i := range rounds {
		var wg sync.WaitGroup
		var won atomic.Int64
		for _, p := range [][2]uuid.UUID{{x, y}, {y, x}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := rs.Add(ctx, "alice", p[0], relation.Blocks, p[1], nil); err == nil {
					won.Add(1)
				} else if errs.KindOf(err) != errs.Conflict {
					t.Errorf("round %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			both.Add(1)
		}
		if _, err := db.Primary.Exec(ctx, `DELETE FROM task_relations`); err != nil {
			t.Fatal(err)
		}
	}
	if n := both.Load(); n != 0 {
		t.Fatalf("%d of %d rounds ended with both or neither inverse relation", n, rounds)
	}
}

// counts reads parent's stored counts and version, and the counts its
// relations give.
func counts(t *testing.T, db *pg.DB, parent uuid.UUID) (stored, truth task.Subtasks, version int64) {
	t.Helper()
	const q = `
SELECT p.subtasks_total, p.subtasks_done, p.version,
       (SELECT count(*) FROM task_relations r JOIN tasks c ON c.id = r.task_id
        WHERE r.other_id = p.id AND r.kind = 'subtask_of' AND c.deleted_at IS NULL),
       (SELECT count(*) FROM task_relations r JOIN tasks c ON c.id = r.task_id
        WHERE r.other_id = p.id AND r.kind = 'subtask_of' AND c.deleted_at IS NULL AND c.status IN ('done', 'cancelled'))
FROM tasks p WHERE p.id = $1`
	if err := db.Primary.QueryRow(t.Context(), q, parent).Scan(&stored.Total, &stored.Done, &version, &truth.Total, &truth.Done); err != nil {
		t.Fatal(err)
	}
	return stored, truth, version
}

// Each step changes the subtasks of p through the stores' own paths;
// after it, p's counts, its version and what the write reported touched
// are checked.
func TestSubtaskCounts(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	rs, ts := stores(t, db)
	ids := tasks(t, db, 4)
	p, a, b, c := ids[0], ids[1], ids[2], ids[3]
	status := func(id uuid.UUID, st task.Status) func(task.Touched) error {
		return func(to task.Touched) error {
			_, err := ts.Update(ctx, "alice", id, func(cur task.Task) (task.Task, error) {
				cur.Status = st
				return cur, nil
			}, to)
			return err
		}
	}
	steps := []struct {
		name   string
		do     func(task.Touched) error
		want   task.Subtasks
		bumped bool // p's version moved, and p was reported
	}{
		{"a becomes a subtask", func(to task.Touched) error { _, err := rs.Add(ctx, "alice", a, relation.SubtaskOf, p, to); return err }, task.Subtasks{Total: 1}, true},
		{"b, done, becomes one", func(to task.Touched) error {
			if err := status(b, task.StatusDone)(nil); err != nil {
				return err
			}
			_, err := rs.Add(ctx, "alice", b, relation.SubtaskOf, p, to)
			return err
		}, task.Subtasks{Total: 2, Done: 1}, true},
		{"a blocks p: not a subtask", func(to task.Touched) error { _, err := rs.Add(ctx, "alice", a, relation.Blocks, p, to); return err }, task.Subtasks{Total: 2, Done: 1}, false},
		{"a done", status(a, task.StatusDone), task.Subtasks{Total: 2, Done: 2}, true},
		{"a cancelled: still closed", status(a, task.StatusCancelled), task.Subtasks{Total: 2, Done: 2}, false},
		{"a reopened", status(a, task.StatusTodo), task.Subtasks{Total: 2, Done: 1}, true},
		{"c, no subtask, done", status(c, task.StatusDone), task.Subtasks{Total: 2, Done: 1}, false},
		{"a and b in progress, with p, in one bulk change", func(to task.Touched) error {
			_, err := ts.UpdateMany(ctx, "alice", []uuid.UUID{a, b}, func(cur task.Task) (task.Task, error) {
				cur.Status = task.StatusInProgress
				return cur, nil
			}, to)
			return err
		}, task.Subtasks{Total: 2}, true},
		{"b trashed", func(to task.Touched) error { _, err := ts.Trash(ctx, "alice", b, nil, to); return err }, task.Subtasks{Total: 1}, true},
		{"b restored", func(to task.Touched) error {
			_, err := ts.Restore(ctx, "alice", b, func(task.Trashed) error { return nil }, to)
			return err
		}, task.Subtasks{Total: 2}, true},
		{"b trashed again", func(to task.Touched) error { _, err := ts.Trash(ctx, "alice", b, nil, to); return err }, task.Subtasks{Total: 1}, true},
		{"b purged: counted out already", func(to task.Touched) error {
			return ts.Purge(ctx, "alice", b, func(task.Trashed) error { return nil })
		}, task.Subtasks{Total: 1}, false},
		{"a's relation removed", func(to task.Touched) error { return rs.Remove(ctx, "alice", a, relation.SubtaskOf, p, to) }, task.Subtasks{}, true},
	}
	_, _, version := counts(t, db, p)
	for _, s := range steps {
		var touched []task.Task
		if err := s.do(&touched); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		stored, truth, v := counts(t, db, p)
		if stored != s.want || truth != s.want {
			t.Errorf("%s: stored %+v, relations give %+v, want %+v", s.name, stored, truth, s.want)
		}
		if bumped := v != version; bumped != s.bumped {
			t.Errorf("%s: p's version %d → %d, want bumped %v", s.name, version, v, s.bumped)
		}
		if s.bumped && (len(touched) != 1 || touched[0].ID != p || touched[0].Version != v || touched[0].Subtasks != s.want) {
			t.Errorf("%s: touched %+v, want p at version %d", s.name, touched, v)
		}
		if !s.bumped && len(touched) != 0 {
			t.Errorf("%s: touched %+v, want none", s.name, touched)
		}
		version = v
	}
	var evs int
	const q = `SELECT count(*) FROM outbox WHERE key = $1 AND data->'changed' = '["subtasks"]'`
	if err := db.Primary.QueryRow(ctx, q, p.String()).Scan(&evs); err != nil || evs != 9 {
		t.Errorf("p's subtasks events: %d (%v), want one per count change, 9", evs, err)
	}
	// Each relation added or removed has its event, keyed by the task it
	// was added to, naming both projects.
	const rq = `SELECT type, key, data->>'kind', data->>'project' <> '' AND data->>'other_project' <> '' FROM outbox WHERE type LIKE 'dev.taskfn.relation.%' ORDER BY id`
	rows, _ := db.Primary.Query(ctx, rq)
	type line struct {
		Type, Key, Kind string
		Projects        bool
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[line])
	want := []line{
		{"dev.taskfn.relation.added.v1", a.String(), "subtask_of", true},
		{"dev.taskfn.relation.added.v1", b.String(), "subtask_of", true},
		{"dev.taskfn.relation.added.v1", a.String(), "blocks", true},
		{"dev.taskfn.relation.removed.v1", a.String(), "subtask_of", true},
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("relation events %+v (%v), want %+v", got, err, want)
	}
}

// TestSubtaskCountsUnderRaces changes many subtasks of one parent at once —
// statuses, bulk changes, relations added and removed — and checks the
// stored counts against the relations after every round.
func TestSubtaskCountsUnderRaces(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	rs, ts := stores(t, db)
	ids := tasks(t, db, 9)
	p, kids := ids[0], ids[1:]
	flip := func(cur task.Task) (task.Task, error) {
		if cur.Status.Closed() {
			cur.Status = task.StatusTodo
		} else {
			cur.Status = task.StatusDone
		}
		return cur, nil
	}
	const rounds = 40
	for round := range rounds {
		var wg sync.WaitGroup
		for i, k := range kids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				switch (i + round) % 4 {
				case 0:
					_, err = rs.Add(ctx, "alice", k, relation.SubtaskOf, p, nil)
				case 1:
					err = rs.Remove(ctx, "alice", k, relation.SubtaskOf, p, nil)
				case 2:
					_, err = ts.Update(ctx, "alice", k, flip)
				default:
					_, err = ts.UpdateMany(ctx, "alice", []uuid.UUID{k, kids[(i+1)%len(kids)]}, flip)
				}
				if err != nil && errs.KindOf(err) != errs.Conflict && !errors.Is(err, relation.ErrNotFound) {
					t.Errorf("round %d, task %d: %v", round, i, err)
				}
			}()
		}
		wg.Wait()
		if stored, truth, _ := counts(t, db, p); stored != truth {
			t.Fatalf("round %d: stored %+v, relations give %+v", round, stored, truth)
		}
	}
}
