package task_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// remindRows is the table the target names: a tick must cost
// under 50 ms with a million tasks. Two thirds are dated within the year after
// the next two days and, open, wait for their overdue notice (the trigger sets
// next_remind_at as they are inserted); one in five has two reminders.
const remindRows = 1_000_000

// BenchmarkRemindTick times task.Store.FireReminders on remindRows tasks:
// "idle" is a tick with nothing due (every minute's usual case), "batch"
// a tick that sends a full batch of 500, and "point read" a GET of one
// task by id on the same table, the baseline the two are reported
// against (ratio).
func BenchmarkRemindTick(b *testing.B) {
	s, db := newStore(b)
	ctx := b.Context()
	const fill = `
INSERT INTO tasks (id, title, status, priority, owner_id, due_at, reminders, created_at, updated_at)
SELECT gen_random_uuid(), 'bench task ' || g,
       (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + g % 5],
       'medium', 'user-' || (g % 997),
       CASE WHEN g % 3 = 0 THEN NULL ELSE now() + interval '2 days' + (g % 525600) * interval '1 minute' END,
       CASE WHEN g % 3 <> 0 AND g % 5 = 1 THEN ARRAY['-P1D', '-PT1H'] ELSE '{}' END,
       timestamptz '2025-01-01' + g * interval '1 second', timestamptz '2025-01-01' + g * interval '1 second'
FROM generate_series($1::int, $2::int) AS g`
	start := time.Now()
	// In parts: each stays well inside the pool's statement timeout.
	const part = 100_000
	for from := 1; from <= remindRows; from += part {
		if _, err := db.Primary.Exec(ctx, fill, from, from+part-1); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Primary.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
		b.Fatal(err)
	}
	b.Logf("loaded %d tasks in %s", remindRows, time.Since(start).Round(time.Second))
	var ids []uuid.UUID
	rows, _ := db.Primary.Query(ctx, `SELECT id FROM tasks WHERE next_remind_at IS NOT NULL AND status IN ('todo', 'in_progress') LIMIT 200000`)
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil || len(ids) == 0 {
		b.Fatalf("ids: %v (%d)", err, len(ids))
	}

	var point, idle, batch float64
	b.Run("point read", func(b *testing.B) {
		for i := range b.N {
			if _, err := s.GetPrimary(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
		point = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("idle", func(b *testing.B) {
		for range b.N {
			if f, err := s.FireReminders(ctx, time.Now(), 500); err != nil || f.Tasks != 0 {
				b.Fatalf("%+v %v", f, err)
			}
		}
		idle = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(idle/point, "x-point-read")
	})
	b.Run("batch of 500", func(b *testing.B) {
		next := 0
		for range b.N {
			b.StopTimer()
			if next+500 > len(ids) {
				next = 0
			}
			due := make([]string, 500)
			for j := range due {
				due[j] = ids[next+j].String()
			}
			next += 500
			if _, err := db.Primary.Exec(ctx, `UPDATE tasks SET next_remind_at = now() - interval '1 second' WHERE id = ANY($1::uuid[])`, due); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if f, err := s.FireReminders(ctx, time.Now(), 500); err != nil || f.Tasks != 500 {
				b.Fatalf("%+v %v", f, err)
			}
		}
		batch = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(batch/point, "x-point-read")
	})
	if idle > 0 && batch > 0 {
		b.Logf("on %d tasks: idle tick %.2f ms, a batch of 500 %.2f ms, point read %.3f ms (target: a tick under 50 ms)", remindRows, idle/1e6, batch/1e6, point/1e6)
	}
}
