package task_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

// replicaPair opens a store whose replica (DATABASE_READ_URL) is a separate
// copy of the schema, not a streaming replica: nothing written to the
// primary ever reaches it, so every read shows which pool served it, as a
// replica that lags forever would.
func replicaPair(t *testing.T) (s *task.Store, primary, replica *pgxpool.Pool) {
	t.Helper()
	cfg := pgtest.NewConfig(t)
	cfg.ReadURL = pgtest.NewConfig(t).URL
	db, err := pg.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if db.Replica == db.Primary {
		t.Fatal("ReadURL set but one pool")
	}
	s, err = task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db.Primary, db.Replica
}

// seedBoth stores the same task in both databases with a title naming the
// database, and returns its id.
func seedBoth(t *testing.T, primary, replica *pgxpool.Pool) uuid.UUID {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	const q = `
INSERT INTO tasks (id, title, status, priority, owner_id)
VALUES ($1, $2, 'todo', 'medium', 'alice')`
	for title, pool := range map[string]*pgxpool.Pool{"on primary": primary, "on replica": replica} {
		if _, err := pool.Exec(context.Background(), q, id, title); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func titleIn(t *testing.T, pool *pgxpool.Pool, id uuid.UUID) (string, bool) {
	t.Helper()
	var title string
	err := pool.QueryRow(context.Background(), "SELECT title FROM tasks WHERE id = $1", id).Scan(&title)
	if err != nil {
		return "", false
	}
	return title, true
}

// Get and List read the replica; GetPrimary, and the reads inside Update
// and Delete, read the primary; every write goes to the primary only.
func TestReplicaRouting(t *testing.T) {
	t.Parallel()
	t.Run("reads", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s, primary, replica := replicaPair(t)
		id := seedBoth(t, primary, replica)
		onlyPrimary, err := s.Create(ctx, "", draft("alice", "written just now"))
		if err != nil {
			t.Fatal(err)
		}

		if got, err := s.Get(ctx, id); err != nil || got.Title != "on replica" {
			t.Errorf("Get = %q, %v; want the replica's row", got.Title, err)
		}
		if got, err := s.GetPrimary(ctx, id); err != nil || got.Title != "on primary" {
			t.Errorf("GetPrimary = %q, %v; want the primary's row", got.Title, err)
		}
		// A write the replica has not seen yet is not found there.
		if _, err := s.Get(ctx, onlyPrimary.ID); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("Get of a task only on the primary: %v, want ErrNotFound", err)
		}
		if _, err := s.GetPrimary(ctx, onlyPrimary.ID); err != nil {
			t.Errorf("GetPrimary of a task only on the primary: %v", err)
		}
		page, err := s.List(ctx, task.ListQuery{Statuses: []task.Status{task.StatusTodo}, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].Title != "on replica" {
			t.Errorf("List = %+v, want only the replica's row", page.Items)
		}
	})

	t.Run("writes", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s, primary, replica := replicaPair(t)
		created, err := s.Create(ctx, "", draft("alice", "new"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := titleIn(t, replica, created.ID); ok {
			t.Error("Create wrote to the replica")
		}
		if _, ok := titleIn(t, primary, created.ID); !ok {
			t.Error("Create did not write to the primary")
		}

		id := seedBoth(t, primary, replica)
		var seen string
		updated, err := s.Update(ctx, "", id, func(cur task.Task) (task.Task, error) {
			seen = cur.Title
			cur.Priority = task.PriorityHigh
			return cur, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != "on primary" || updated.Title != "on primary" || updated.Version != 2 {
			t.Errorf("Update saw %q and returned %q v%d; want the primary's row, now v2", seen, updated.Title, updated.Version)
		}
		if title, _ := titleIn(t, replica, id); title != "on replica" {
			t.Errorf("replica row after Update: %q", title)
		}

		_, err = s.Trash(ctx, "", id, func(cur task.Task) error {
			seen = cur.Title
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if seen != "on primary" {
			t.Errorf("Trash checked %q, want the primary's row", seen)
		}
		if _, err := s.GetPrimary(ctx, id); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("the primary still serves a trashed task: %v", err)
		}
		var trashed bool
		if err := primary.QueryRow(ctx, "SELECT deleted_at IS NOT NULL FROM tasks WHERE id = $1", id).Scan(&trashed); err != nil || !trashed {
			t.Errorf("the primary's trash lacks it: %v %v", trashed, err)
		}
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("Trash touched the replica: %v", err)
		}
		// A task only the replica has is not found by a write.
		ghost := uuid.Must(uuid.NewV7())
		if _, err := replica.Exec(ctx, "INSERT INTO tasks (id, title, status, priority, owner_id) VALUES ($1, 'ghost', 'todo', 'low', 'alice')", ghost); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, "", ghost, func(cur task.Task) (task.Task, error) { return cur, nil }); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("Update of a task only on the replica: %v, want ErrNotFound", err)
		}
		if _, err := s.Trash(ctx, "", ghost, nil); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("Trash of a task only on the replica: %v, want ErrNotFound", err)
		}
	})
}
