package task_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/task"
)

// benchRows tasks are in the table for Get, Update and List: 53 owners
// and assignees (prime to the 5 statuses, so each user has tasks in every
// status), one task a second. VACUUM leaves the table as it would be in
// steady state: GIN pending list merged, visibility map set.
const benchRows = 20_000

func benchStore(b *testing.B) (*task.Store, []uuid.UUID) {
	b.Helper()
	s, db := newStore(b)
	const q = `
INSERT INTO tasks (id, title, status, priority, owner_id, assignee_id, labels, created_at, updated_at)
SELECT gen_random_uuid(),
       'bench task ' || g,
       (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + g % 5],
       'medium',
       'user-' || (g % 53),
       'user-' || (g * 7 % 53),
       ARRAY['bench'],
       timestamptz '2026-01-01' + g * interval '1 second',
       timestamptz '2026-01-01' + g * interval '1 second'
FROM generate_series(1, $1::int) AS g
RETURNING id`
	ctx := b.Context()
	rows, err := db.Primary.Query(ctx, q, benchRows)
	if err != nil {
		b.Fatal(err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Primary.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
		b.Fatal(err)
	}
	return s, ids
}

func BenchmarkCreate(b *testing.B) {
	s, _ := newStore(b)
	in := draft("alice", "Benchmark")
	in.Labels = []string{"bench"}
	for b.Loop() {
		if _, err := s.Create(b.Context(), "", in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s, ids := benchStore(b)
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkUpdate(b *testing.B) {
	s, ids := benchStore(b)
	b.Run("write", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.Update(b.Context(), "", ids[i%len(ids)], func(cur task.Task) (task.Task, error) {
				cur.Description = fmt.Sprint(i)
				return cur, nil
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("no-op", func(b *testing.B) {
		i := 0
		for b.Loop() {
			_, err := s.Update(b.Context(), "", ids[i%len(ids)], func(cur task.Task) (task.Task, error) { return cur, nil })
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkList(b *testing.B) {
	s, _ := benchStore(b)
	mid := &task.Cursor{CreatedAt: time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC), ID: uuid.Max}
	cases := []struct {
		name string
		q    task.ListQuery
	}{
		{"all", task.ListQuery{Limit: 50}},
		{"all_after_cursor", task.ListQuery{Limit: 50, After: mid}},
		{"status", task.ListQuery{Limit: 50, Statuses: []task.Status{task.StatusTodo}}},
		{"member", task.ListQuery{Limit: 50, Only: own("user-3")}},
		{"member_statuses", task.ListQuery{Limit: 50, Only: own("user-3"), Statuses: []task.Status{task.StatusTodo, task.StatusBlocked}}},
		{"label", task.ListQuery{Limit: 50, Label: "bench"}},
		{"fulltext", task.ListQuery{Limit: 50, Query: "12345"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				page, err := s.List(b.Context(), c.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(page.Items) == 0 {
					b.Fatal("empty page")
				}
			}
		})
	}
}
