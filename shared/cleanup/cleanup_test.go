package cleanup_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/cleanup"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/task"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// small batches, so the aged rows take many of them.
var retention = cleanup.Retention{
	TaskDays: 90, RetentionAction: "archive", TrashDays: 30, NotificationDays: 30, ReportDays: 7, OutboxDays: 3, ProcessedEventDays: 8, ReportAbandonAfter: 2 * time.Hour,
	BatchSize: 50, Budget: time.Minute,
}

// aged is how many rows of each kind are past their retention.
const aged = 400

// seed fills every table with aged rows and with rows that must stay,
// each of the latter named "keep ..." or otherwise marked.
func seed(t *testing.T, db *pg.DB) {
	t.Helper()
	stmts := []string{
		// Tasks: done or cancelled and untouched for more than 90 days are
		// archived; in the trash for more than 30 days, purged.
		`INSERT INTO tasks (id, title, status, priority, owner_id, created_at, updated_at)
		 SELECT gen_random_uuid(), 'old ' || g, CASE WHEN g % 2 = 0 THEN 'done' ELSE 'cancelled' END, 'low', 'alice',
		        $1::timestamptz - interval '200 days', $1::timestamptz - interval '91 days' - g * interval '1 minute'
		 FROM generate_series(1, $2::int) g`,
		`INSERT INTO tasks (id, title, status, priority, owner_id, created_at, updated_at) VALUES
		 (gen_random_uuid(), 'keep done recently', 'done', 'low', 'alice', $1::timestamptz - interval '200 days', $1::timestamptz - interval '89 days'),
		 (gen_random_uuid(), 'keep old but open', 'todo', 'low', 'alice', $1::timestamptz - interval '900 days', $1::timestamptz - interval '900 days'),
		 (gen_random_uuid(), 'keep blocked', 'blocked', 'low', 'alice', $1::timestamptz - interval '900 days', $1::timestamptz - interval '400 days')`,
		`INSERT INTO tasks (id, title, status, priority, owner_id, created_at, updated_at, deleted_at, deleted_by)
		 SELECT gen_random_uuid(), 'trashed ' || g, 'todo', 'low', 'alice',
		        $1::timestamptz - interval '2 days', $1::timestamptz - interval '2 days', $1::timestamptz - interval '31 days' - g * interval '1 minute', 'alice'
		 FROM generate_series(1, $2::int) g`,
		`INSERT INTO tasks (id, title, status, priority, owner_id, created_at, updated_at, deleted_at, deleted_by) VALUES
		 (gen_random_uuid(), 'keep trashed recently', 'done', 'low', 'alice', $1::timestamptz - interval '900 days', $1::timestamptz - interval '400 days', $1::timestamptz - interval '29 days', 'alice')`,
		// Notifications: read more than 30 days ago go; unread stay.
		`INSERT INTO notifications (id, recipient, event_id, kind, summary, created_at, read_at)
		 SELECT gen_random_uuid(), 'alice', 'old-' || g, 'task.status_changed', 'old', $1::timestamptz - interval '60 days', $1::timestamptz - interval '31 days'
		 FROM generate_series(1, $2::int) g`,
		`INSERT INTO notifications (id, recipient, event_id, kind, summary, created_at, read_at) VALUES
		 ('00000000-0000-7000-8000-000000000001', 'alice', 'keep-1', 'task.status_changed', 'keep read recently', $1::timestamptz - interval '60 days', $1::timestamptz - interval '29 days'),
		 ('00000000-0000-7000-8000-000000000002', 'alice', 'keep-2', 'task.status_changed', 'keep unread', $1::timestamptz - interval '400 days', NULL)`,
		// Emails: queued more than 30 days ago go.
		`INSERT INTO email_outbox (id, notification_id, event_id, to_address, subject, body, message_id, created_at)
		 SELECT gen_random_uuid(), '00000000-0000-7000-8000-000000000002', 'e-' || g, 'a@x.test', 'old', '', '<x>', $1::timestamptz - interval '31 days'
		 FROM generate_series(1, $2::int) g`,
		`INSERT INTO email_outbox (id, notification_id, event_id, to_address, subject, body, message_id, created_at) VALUES
		 (gen_random_uuid(), '00000000-0000-7000-8000-000000000001', 'keep', 'a@x.test', 'keep', '', '<y>', $1::timestamptz - interval '1 day')`,
		// Reports (and their chunks): requested more than 7 days ago go.
		`INSERT INTO reports (id, kind, format, requested_by, status, created_at)
		 SELECT gen_random_uuid(), 'tasks_export', 'csv', 'alice', 'succeeded', $1::timestamptz - interval '8 days' FROM generate_series(1, $2::int)`,
		`INSERT INTO report_chunks (report_id, attempt, seq, data) SELECT id, 1, 0, 'x' FROM reports WHERE created_at < $1`,
		`INSERT INTO reports (id, kind, format, requested_by, status, created_at) VALUES
		 (gen_random_uuid(), 'tasks_export', 'csv', 'keep', 'succeeded', $1::timestamptz - interval '6 days')`,
		// A report whose build was lost a day ago: failed, kept until its retention.
		`INSERT INTO reports (id, kind, format, requested_by, status, created_at) VALUES
		 (gen_random_uuid(), 'tasks_export', 'csv', 'keep abandoned', 'pending', $1::timestamptz - interval '1 day')`,
		// Outbox: published more than 3 days ago goes; unpublished stays.
		`INSERT INTO outbox (event_id, topic, key, type, source, subject, data, created_at, published_at)
		 SELECT gen_random_uuid(), 't', 'k', 'old', 's', 'k', '{}', $1::timestamptz - interval '5 days', $1::timestamptz - interval '4 days'
		 FROM generate_series(1, $2::int)`,
		`INSERT INTO outbox (event_id, topic, key, type, source, subject, data, created_at, published_at) VALUES
		 (gen_random_uuid(), 't', 'k', 'keep published', 's', 'k', '{}', $1::timestamptz - interval '3 days', $1::timestamptz - interval '2 days'),
		 (gen_random_uuid(), 't', 'k', 'keep unpublished', 's', 'k', '{}', $1::timestamptz - interval '30 days', NULL)`,
		// Processed events: recorded more than 8 days ago go.
		`INSERT INTO processed_events (consumer, event_id, processed_at)
		 SELECT 'notify', 'old-' || g, $1::timestamptz - interval '9 days' FROM generate_series(1, $2::int) g`,
		`INSERT INTO processed_events (consumer, event_id, processed_at) VALUES ('notify', 'keep', $1::timestamptz - interval '7 days')`,
		// Command receipts: the same redelivery window.
		`INSERT INTO command_receipts (producer, source, id, status, body, created_at)
		 SELECT 'svc', '/s', 'old-' || g, 201, '{}', $1::timestamptz - interval '9 days' FROM generate_series(1, $2::int) g`,
		`INSERT INTO command_receipts (producer, source, id, status, body, created_at) VALUES ('svc', '/s', 'keep', 201, '{}', $1::timestamptz - interval '7 days')`,
	}
	for _, q := range stmts {
		args := []any{now}
		if strings.Contains(q, "$2") {
			args = append(args, aged)
		}
		if _, err := db.Primary.Exec(context.Background(), q, args...); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
}

// left is what remains of each table: the markers of the rows that stay.
func left(t *testing.T, db *pg.DB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for table, q := range map[string]string{
		"tasks":            "SELECT title FROM tasks WHERE archived_at IS NULL ORDER BY title",
		"archived":         "SELECT count(*)::text || ' archived, ' || count(*) FILTER (WHERE title LIKE 'old %')::text || ' of them old' FROM tasks WHERE archived_at IS NOT NULL",
		"task events":      "SELECT type || ' ' || count(*)::text FROM outbox WHERE type LIKE 'dev.taskfn.task.%' GROUP BY type ORDER BY type",
		"notifications":    "SELECT summary FROM notifications ORDER BY summary",
		"email_outbox":     "SELECT subject FROM email_outbox ORDER BY subject",
		"reports":          "SELECT requested_by || ' ' || status FROM reports ORDER BY requested_by",
		"report_chunks":    "SELECT 'chunk of ' || r.requested_by FROM report_chunks c JOIN reports r ON r.id = c.report_id",
		"outbox":           "SELECT type FROM outbox WHERE type NOT LIKE 'dev.taskfn.task.%' ORDER BY type",
		"processed_events": "SELECT event_id FROM processed_events",
		"command_receipts": "SELECT id FROM command_receipts",
	} {
		rows, err := db.Primary.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[table] = append(out[table], s)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
	}
	return out
}

var wantLeft = map[string][]string{
	"tasks":            {"keep blocked", "keep done recently", "keep old but open", "keep trashed recently"},
	"archived":         {"400 archived, 400 of them old"},
	"task events":      {"dev.taskfn.task.purged.v1 400", "dev.taskfn.task.updated.v1 400"},
	"notifications":    {"keep read recently", "keep unread"},
	"email_outbox":     {"keep"},
	"reports":          {"keep succeeded", "keep abandoned failed"},
	"outbox":           {"dev.taskfn.report.completed.v1", "keep published", "keep unpublished"}, // the abandoned report's
	"processed_events": {"keep"},
	"command_receipts": {"keep"},
}

var wantDeleted = cleanup.Result{ArchivedTasks: aged, PurgedTasks: aged, Notifications: aged, Emails: aged, Reports: aged, AbandonedReports: 1, Outbox: aged, ProcessedEvents: aged, CommandReceipts: aged}

// Cleanup removes exactly the aged rows, one run alone or several at
// once; together they delete each row once, and a run after them finds
// nothing.
func TestCleanupRemovesExactlyAgedRows(t *testing.T) {
	t.Parallel()
	for _, runs := range []int{1, 2, 4} {
		t.Run(map[int]string{1: "one run", 2: "two at once", 4: "four at once"}[runs], func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			seed(t, db)
			c := newCleaner(t, db, retention, cachetest.Config(t, ""))
			results := make([]cleanup.Result, runs)
			var wg sync.WaitGroup
			for i := range runs {
				wg.Go(func() {
					var err error
					if results[i], err = c.Run(context.Background(), now); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			var total cleanup.Result
			for _, r := range results {
				if !r.Complete {
					t.Errorf("run incomplete: %+v", r)
				}
				total.ArchivedTasks += r.ArchivedTasks
				total.TrashedTasks += r.TrashedTasks
				total.PurgedTasks += r.PurgedTasks
				total.Notifications += r.Notifications
				total.Emails += r.Emails
				total.Reports += r.Reports
				total.AbandonedReports += r.AbandonedReports
				total.Outbox += r.Outbox
				total.ProcessedEvents += r.ProcessedEvents
				total.CommandReceipts += r.CommandReceipts
			}
			if d := cmp.Diff(wantDeleted, total, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Complete" }, cmp.Ignore())); d != "" {
				t.Errorf("deleted (-want +got):\n%s", d)
			}
			if d := cmp.Diff(wantLeft, left(t, db)); d != "" {
				t.Errorf("left (-want +got):\n%s", d)
			}
			again, err := c.Run(context.Background(), now)
			if err != nil || again != (cleanup.Result{Complete: true}) {
				t.Errorf("second run: %+v, %v", again, err)
			}
		})
	}
}

// A run out of budget stops between batches and says so; the next one
// goes on.
func TestCleanupBudget(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	seed(t, db)
	cfg := retention
	cfg.Budget = time.Nanosecond
	ccfg := cachetest.Config(t, "")
	c := newCleaner(t, db, cfg, ccfg)
	res, err := c.Run(context.Background(), now)
	if err != nil || res.Complete {
		t.Errorf("tiny budget: %+v, %v; want an incomplete run", res, err)
	}
	cfg.Budget = time.Minute
	c = newCleaner(t, db, cfg, ccfg)
	if res, err := c.Run(context.Background(), now); err != nil || !res.Complete {
		t.Errorf("next run: %+v, %v", res, err)
	}
	if d := cmp.Diff(wantLeft, left(t, db)); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
}

// The function's route: a PingSource tick runs a cleanup and gets what was
// deleted; something else is refused.
func TestTickHandler(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	seed(t, db)
	h, err := cleanup.NewHandler(newCleaner(t, db, retention, cachetest.Config(t, "")))
	if err != nil {
		t.Fatal(err)
	}
	ts := httpxtest.Serve(t, httpx.NewRouter(zerolog.Nop(), prometheus.NewRegistry(), db.Ping, h.Route()))

	resp, err := http.Post(ts.URL+"/", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("plain POST: %d, want 400", resp.StatusCode)
	}

	tick := event.New()
	tick.SetID("tick-1")
	tick.SetSource("/apis/v1/namespaces/taskfn/pingsources/cleanup")
	tick.SetType("dev.knative.sources.ping")
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), ts.URL+"/", tick)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var got cleanup.Result
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.ArchivedTasks == 0 || !got.Complete {
		t.Errorf("tick: %d %s", resp.StatusCode, body)
	}
}

func TestRetentionValidation(t *testing.T) {
	t.Parallel()
	none := func(context.Context, uuid.UUID) (task.Task, error) { return task.Task{}, task.ErrNotFound }
	off := cachetest.Config(t, "")
	off.Enabled = false
	disabled, err := cache.New(t.Context(), off, cache.Loaders{Replica: none, Primary: none}, prometheus.NewRegistry(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(*cleanup.Retention){
		func(r *cleanup.Retention) { r.TaskDays = 0 },
		func(r *cleanup.Retention) { r.TrashDays = 0 },
		func(r *cleanup.Retention) { r.RetentionAction = "delete" },
		func(r *cleanup.Retention) { r.ProcessedEventDays = -1 },
		func(r *cleanup.Retention) { r.BatchSize = 0 },
		func(r *cleanup.Retention) { r.ReportAbandonAfter = time.Second },
		func(r *cleanup.Retention) { r.Budget = 0 },
	} {
		cfg := retention
		change(&cfg)
		if _, err := cleanup.New(&pg.DB{}, cfg, disabled); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := cleanup.New(&pg.DB{}, retention, nil); err == nil {
		t.Error("a cleaner without the task cache accepted")
	}
}

// openCache is a task cache on db as a task function opens it, closed
// when t ends.
func openCache(t *testing.T, db *pg.DB, cfg cache.Config) *cache.Cache {
	t.Helper()
	store, err := task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cache.ForStore(t.Context(), cfg, store, prometheus.NewRegistry(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	return tc
}

// newCleaner is a Cleaner on db whose task cache is the Redis of ccfg.
func newCleaner(t *testing.T, db *pg.DB, cfg cleanup.Retention, ccfg cache.Config) *cleanup.Cleaner {
	t.Helper()
	cachetest.Cleanup(t, ccfg)
	c, err := cleanup.New(db, cfg, openCache(t, db, ccfg))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Retention deletes are writes the cache must see: a task get-task had
// cached reads as archived, at its new version, once a cleanup has
// archived it, from another process's cache too, and even when Redis
// stalled through the cleanup (the cleaner then drops the whole
// generation once Redis answers). Tasks the cleanup keeps stay as they were.
func TestRetentionRefreshesCachedTasks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		stall time.Duration // Redis is paused for this long as the run starts
	}{
		{"redis answers", 0},
		{"redis stalls through the run", 1500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := pgtest.New(t)
			seed(t, db)
			ccfg := cachetest.Config(t, cachetest.StartServer(t).URL())
			cleaner := newCleaner(t, db, retention, ccfg)
			reader := openCache(t, db, ccfg) // get-task's cache, in another process
			ctx := context.Background()

			rows, _ := db.Primary.Query(ctx, `SELECT id FROM tasks WHERE title LIKE 'old %' ORDER BY title LIMIT 20`)
			archived, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil || len(archived) != 20 {
				t.Fatalf("aged ids: %d, %v", len(archived), err)
			}
			var kept uuid.UUID
			if err := db.Primary.QueryRow(ctx, `SELECT id FROM tasks WHERE title = 'keep done recently'`).Scan(&kept); err != nil {
				t.Fatal(err)
			}
			rdb := cachetest.Client(t, ccfg.RedisURL)
			for _, id := range append(archived, kept) {
				if _, err := reader.Get(ctx, id); err != nil {
					t.Fatalf("caching %s: %v", id, err)
				}
				if n := rdb.Exists(ctx, ccfg.KeyPrefix+"task:"+id.String()).Val(); n != 1 {
					t.Fatalf("task %s not cached", id)
				}
			}

			answers := time.Now().Add(tt.stall)
			if tt.stall > 0 {
				if err := rdb.ClientPause(ctx, tt.stall).Err(); err != nil {
					t.Fatal(err)
				}
			}
			res, err := cleaner.Run(ctx, now)
			if err != nil || res.ArchivedTasks != aged || !res.Complete {
				t.Fatalf("run: %+v, %v; want all %d aged tasks archived", res, err, aged)
			}
			// Read only once Redis answers again: a read during the pause
			// falls back to the database and would prove nothing.
			time.Sleep(time.Until(answers) + 50*time.Millisecond)

			deadline := time.Now().Add(5 * time.Second)
			for _, id := range archived {
				for {
					e, err := reader.Get(ctx, id)
					if err == nil && e.Version == 2 && strings.Contains(string(e.JSON), `"archived":true`) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("archived task %s still read from the cache as before: %+v, %v", id, e, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			if e, err := reader.Get(ctx, kept); err != nil || e.Version != 1 {
				t.Errorf("kept task: %+v, %v", e, err)
			}
		})
	}
}

// TestRetentionRecountsParents: with RETENTION_ACTION=trash, a subtask the
// cleanup trashes leaves its parent's counts, in the database and in the
// cache another process reads, and reads as not found itself.
func TestRetentionRecountsParents(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	ccfg := cachetest.Config(t, cachetest.StartServer(t).URL())
	trashing := retention
	trashing.RetentionAction = "trash"
	cleaner := newCleaner(t, db, trashing, ccfg)
	reader := openCache(t, db, ccfg)
	parent, old, fresh := uuid.New(), uuid.New(), uuid.New()
	for _, s := range []string{
		`INSERT INTO tasks (id, title, status, priority, owner_id, subtasks_total, subtasks_done) VALUES ('` + parent.String() + `', 'parent', 'todo', 'low', 'alice', 2, 2)`,
		`INSERT INTO tasks (id, title, status, priority, owner_id, updated_at) VALUES
		 ('` + old.String() + `', 'old', 'done', 'low', 'alice', now() - interval '400 days'),
		 ('` + fresh.String() + `', 'fresh', 'done', 'low', 'alice', now())`,
		`INSERT INTO task_relations (task_id, kind, other_id, created_by) VALUES
		 ('` + old.String() + `', 'subtask_of', '` + parent.String() + `', 'alice'),
		 ('` + fresh.String() + `', 'subtask_of', '` + parent.String() + `', 'alice')`,
	} {
		if _, err := db.Primary.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	before, err := reader.Get(ctx, parent)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Get(ctx, old); err != nil {
		t.Fatal(err)
	}
	if res, err := cleaner.Run(ctx, time.Now()); err != nil || res.TrashedTasks != 1 || res.ArchivedTasks != 0 {
		t.Fatalf("run: %+v, %v; want the old subtask trashed", res, err)
	}
	if _, err := reader.Get(ctx, old); !errors.Is(err, task.ErrNotFound) {
		t.Errorf("the trashed subtask reads %v, want not found", err)
	}
	var by string
	if err := db.Primary.QueryRow(ctx, `SELECT deleted_by FROM tasks WHERE id = $1 AND deleted_at IS NOT NULL`, old).Scan(&by); err != nil || by != "" {
		t.Errorf("the old subtask is not in the trash, trashed by the system: %q, %v", by, err)
	}
	var got task.Subtasks
	var version int64
	if err := db.Primary.QueryRow(ctx, `SELECT subtasks_total, subtasks_done, version FROM tasks WHERE id = $1`, parent).Scan(&got.Total, &got.Done, &version); err != nil {
		t.Fatal(err)
	}
	if got != (task.Subtasks{Total: 1, Done: 1}) || version != before.Version+1 {
		t.Errorf("parent %+v at version %d, want {1 1} at %d", got, version, before.Version+1)
	}
	e, err := reader.Get(ctx, parent)
	if err != nil || e.Version != version || !strings.Contains(string(e.JSON), `"subtasks":{"total":1,"done":1}`) {
		t.Errorf("cached parent: version %d %s, %v; want version %d with the new counts", e.Version, e.JSON, err, version)
	}
}
