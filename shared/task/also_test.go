package task_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/task"
)

// Also's work runs in the write's own transaction: it sees the task as
// written, its statements commit with the write, and its error undoes the
// write; an update that changes nothing still runs it, with the task as
// it is. The Store Also was called on is unchanged.
func TestAlsoRunsInTheWritesTransaction(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	if _, err := db.Primary.Exec(ctx, `CREATE TABLE seen (id uuid, version bigint)`); err != nil {
		t.Fatal(err)
	}
	record := func(ctx context.Context, tx pgx.Tx, written task.Task) error {
		_, err := tx.Exec(ctx, `INSERT INTO seen VALUES ($1, $2)`, written.ID, written.Version)
		return err
	}
	seen := func() int {
		var n int
		if err := db.Primary.QueryRow(ctx, `SELECT count(*) FROM seen`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	created, err := s.Also(record).Create(ctx, "alice", draft("alice", "with a receipt"))
	if err != nil || seen() != 1 {
		t.Fatalf("create: %v, %d rows seen", err, seen())
	}
	same := func(cur task.Task) (task.Task, error) { return cur, nil }
	if _, err := s.Also(record).Update(ctx, "alice", created.ID, same); err != nil || seen() != 2 {
		t.Fatalf("no-op update: %v, %d rows seen", err, seen())
	}
	boom := errors.New("boom")
	fail := func(context.Context, pgx.Tx, task.Task) error { return boom }
	if _, err := s.Also(fail).Create(ctx, "alice", draft("alice", "undone")); !errors.Is(err, boom) {
		t.Fatalf("failing create: %v", err)
	}
	rename := func(cur task.Task) (task.Task, error) { cur.Title = "renamed"; return cur, nil }
	if _, err := s.Also(fail).Update(ctx, "alice", created.ID, rename); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	var n int
	if err := db.Primary.QueryRow(ctx, `SELECT count(*) FROM tasks`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d tasks (%v): the failing create was not undone", n, err)
	}
	if got, err := s.GetPrimary(ctx, created.ID); err != nil || got.Title != "with a receipt" || got.Version != 1 {
		t.Fatalf("task after the failing update: %+v, %v", got, err)
	}
	if _, err := s.Update(ctx, "alice", created.ID, rename); err != nil || seen() != 2 {
		t.Errorf("an update through the original store ran Also: %v, %d rows seen", err, seen())
	}
}
