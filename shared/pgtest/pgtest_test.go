package pgtest_test

import (
	"testing"

	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each New is its own migrated database: rows written in one are not in
// another, and the database is gone after the test.
func TestNewIsolatesAndDrops(t *testing.T) {
	t.Parallel()
	names := make(chan string, 3)
	t.Run("group", func(t *testing.T) {
		for _, title := range []string{"first", "second", "third"} {
			t.Run(title, func(t *testing.T) {
				t.Parallel()
				db := pgtest.New(t)
				ctx := t.Context()
				const insert = `
INSERT INTO tasks (id, title, status, priority, owner_id)
VALUES (gen_random_uuid(), $1, 'todo', 'low', 'alice')`
				if _, err := db.Primary.Exec(ctx, insert, title); err != nil {
					t.Fatal(err)
				}
				var got []string
				rows, err := db.Primary.Query(ctx, "SELECT title FROM tasks")
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var s string
					if err := rows.Scan(&s); err != nil {
						t.Fatal(err)
					}
					got = append(got, s)
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0] != title {
					t.Errorf("tasks holds %q, want only %q", got, title)
				}
				var name string
				if err := db.Primary.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
					t.Fatal(err)
				}
				names <- name
			})
		}
	})
	close(names)

	db := pgtest.New(t)
	seen := map[string]bool{}
	for name := range names {
		if seen[name] {
			t.Errorf("database %s handed out twice", name)
		}
		seen[name] = true
		var exists bool
		if err := db.Primary.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s still exists after its test", name)
		}
	}
	if len(seen) != 3 {
		t.Errorf("%d databases, want 3", len(seen))
	}
}
