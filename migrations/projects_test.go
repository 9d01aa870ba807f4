package migrations_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// beforeProjects is a database migrated up to the version before projects.
func beforeProjects(t testing.TB) (*pgxpool.Pool, *goose.Provider) {
	t.Helper()
	pool := pgtest.New(t).Primary
	cc, err := pgx.ParseConfig(pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*cc)
	t.Cleanup(func() { sqlDB.Close() })
	p, err := migrations.NewProvider(sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	return pool, p
}

// TestProjectsMigration: existing tasks land in their owners' personal
// projects, created for them; tasks inserted without a project afterwards
// (by a revision older than the migration) too; the column ends NOT NULL
// and a second run changes nothing.
func TestProjectsMigration(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, p := beforeProjects(t)
	// More rows than one batch, so the walk takes several.
	const rows = 12_345
	if _, err := pool.Exec(ctx, `
INSERT INTO tasks (id, title, status, priority, owner_id)
SELECT gen_random_uuid(), 't' || g, 'todo', 'low', 'owner-' || (g % 7) FROM generate_series(1, $1::int) AS g`, rows); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := p.Up(ctx); err != nil {
			t.Fatalf("up, run %d: %v", i+1, err)
		}
	}
	var misplaced, projects, personal int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE project IS DISTINCT FROM '~' || owner_id`).Scan(&misplaced); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE personal_of IS NOT NULL AND key = '~' || personal_of) FROM projects`).Scan(&projects, &personal); err != nil {
		t.Fatal(err)
	}
	if misplaced != 0 || projects != 7 || personal != 7 {
		t.Fatalf("%d tasks outside their owner's personal project; %d projects, %d personal; want 0, 7, 7", misplaced, projects, personal)
	}
	var nullable string
	if err := pool.QueryRow(ctx, `SELECT is_nullable FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'project'`).Scan(&nullable); err != nil || nullable != "NO" {
		t.Fatalf("tasks.project nullable %q (%v), want NO", nullable, err)
	}
	var valid bool
	if err := pool.QueryRow(ctx, `SELECT convalidated FROM pg_constraint WHERE conname = 'tasks_project_fkey'`).Scan(&valid); err != nil || !valid {
		t.Fatalf("foreign key validated %t (%v)", valid, err)
	}
	// An insert without a project, as an older revision sends it.
	var key string
	if err := pool.QueryRow(ctx, `INSERT INTO tasks (id, title, status, priority, owner_id) VALUES (gen_random_uuid(), 'late', 'todo', 'low', 'newcomer') RETURNING project`).Scan(&key); err != nil || key != "~newcomer" {
		t.Fatalf("an insert without a project went to %q (%v)", key, err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO tasks (id, title, status, priority, owner_id, project) VALUES (gen_random_uuid(), 'x', 'todo', 'low', 'a', 'nope')`); err == nil {
		t.Fatal("a task was filed in a project that does not exist")
	}
}

// BenchmarkProjectsMigration runs the projects migration on a table of
// BENCH_MIGRATION_ROWS tasks (1,000,000 by default) while writers insert and
// update tasks as fast as they can, and reports the longest any write waited
// (max-write-ms) and how long the migration took. Writes must never stall
// for more than a second: the migration's locking steps run under a 1 s
// lock_timeout and the backfill moves 5000 rows per transaction.
func BenchmarkProjectsMigration(b *testing.B) {
	rows := 1_000_000
	if s := os.Getenv("BENCH_MIGRATION_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	for range b.N {
		b.StopTimer()
		ctx := context.Background()
		pool, p := beforeProjects(b)
		if _, err := pool.Exec(ctx, `
INSERT INTO tasks (id, title, status, priority, owner_id, created_at, updated_at)
SELECT gen_random_uuid(), 'seeded ' || g, (ARRAY['todo','in_progress','blocked','done','cancelled'])[1 + g % 5], 'low',
       'user-' || (g % 1000), now() - g * interval '1 second', now()
FROM generate_series(1, $1::int) AS g`, rows); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
			b.Fatal(err)
		}
		var ids []string
		r, _ := pool.Query(ctx, `SELECT id::text FROM tasks TABLESAMPLE SYSTEM (1) LIMIT 5000`)
		ids, err := pgx.CollectRows(r, pgx.RowTo[string])
		if err != nil {
			b.Fatal(err)
		}

		// Writers: inserts without a project (a revision older than the
		// migration) and updates of existing rows, each timed.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var worst atomic.Int64
		var writes atomic.Int64
		var mu sync.Mutex
		var lats []time.Duration
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					var err error
					if i%2 == 0 {
						_, err = pool.Exec(ctx, `INSERT INTO tasks (id, title, status, priority, owner_id) VALUES (gen_random_uuid(), 'during', 'todo', 'low', $1)`, fmt.Sprintf("writer-%d", w))
					} else {
						_, err = pool.Exec(ctx, `UPDATE tasks SET version = version + 1, updated_at = now() WHERE id = $1`, ids[(i*7+w)%len(ids)])
					}
					d := time.Since(start)
					if err != nil {
						b.Errorf("write during the migration: %v", err)
						return
					}
					writes.Add(1)
					for {
						cur := worst.Load()
						if int64(d) <= cur || worst.CompareAndSwap(cur, int64(d)) {
							break
						}
					}
					mu.Lock()
					lats = append(lats, d)
					mu.Unlock()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		if _, err := p.Up(ctx); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		b.StopTimer()
		close(stop)
		wg.Wait()
		slices.Sort(lats)
		p99 := lats[len(lats)*99/100]
		b.ReportMetric(float64(worst.Load())/1e6, "max-write-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-write-ms")
		b.ReportMetric(took.Seconds(), "migration-s")
		b.ReportMetric(float64(writes.Load())/took.Seconds(), "writes/s")
		b.Logf("%d rows: migration %s; %d writes meanwhile, p99 %s, longest %s",
			rows, took.Round(time.Millisecond), writes.Load(), p99, time.Duration(worst.Load()))
		if time.Duration(worst.Load()) > time.Second {
			b.Errorf("a write waited %s during the migration, want at most 1s", time.Duration(worst.Load()))
		}
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE project IS NULL`).Scan(&left); err != nil || left != 0 {
			b.Fatalf("%d tasks without a project (%v)", left, err)
		}
	}
}
