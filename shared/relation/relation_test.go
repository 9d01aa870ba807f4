package relation_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/relation"
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

func TestRules(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	ids := tasks(t, db, 4)
	a, b, c, d := ids[0], ids[1], ids[2], ids[3]
	add := func(x uuid.UUID, k relation.Kind, y uuid.UUID) error {
		_, err := relation.Add(ctx, db, "alice", x, k, y)
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
	of, err := relation.Of(ctx, db, a)
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
	if err := relation.Remove(ctx, db, "alice", a, relation.SubtaskOf, d); err != nil {
		t.Fatal(err)
	}
	if err := relation.Remove(ctx, db, "alice", a, relation.SubtaskOf, d); !errors.Is(err, relation.ErrNotFound) {
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
				if _, err := relation.Add(ctx, db, "alice", p[0], relation.Blocks, p[1]); err == nil {
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
