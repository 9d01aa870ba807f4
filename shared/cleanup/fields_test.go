package cleanup_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// A deleted custom field: its values are hidden at once (Present through
// the live set), the tick removes them in batches without bumping any
// task's version or updated_at, then the definition's row goes. The other
// field's values stay.
func TestCleanupPurgesDeletedFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := pgtest.New(t)
	if _, err := db.Primary.Exec(ctx, `INSERT INTO projects (key, name, created_by) VALUES ('ops', 'Ops', 'alice')`); err != nil {
		t.Fatal(err)
	}
	store, err := field.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := store.Create(ctx, field.Definition{Project: "ops", Name: "gone", Type: field.Number, CreatedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	stays, err := store.Create(ctx, field.Definition{Project: "ops", Name: "stays", Type: field.Text, CreatedBy: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	const tasks = 2*50 + 7 // more than two of retention's batches
	if _, err := db.Primary.Exec(ctx, `
INSERT INTO tasks (id, title, status, priority, owner_id, project, fields)
SELECT gen_random_uuid(), 't' || g, 'todo', 'low', 'alice', 'ops', jsonb_build_object($1::text, g, $2::text, 'kept')
FROM generate_series(1, $3::int) g`, gone.Key(), stays.Key(), tasks); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		var s string
		if err := db.Primary.QueryRow(ctx, `SELECT string_agg(id || ':' || version || '@' || updated_at, ',' ORDER BY id) FROM tasks`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()

	if err := store.Delete(ctx, "ops", gone.ID, func(field.Definition) error { return nil }); err != nil {
		t.Fatal(err)
	}
	set, err := store.Load(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]json.RawMessage
	if err := db.Primary.QueryRow(ctx, `SELECT fields FROM tasks LIMIT 1`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 {
		t.Fatalf("stored before the tick %v: the delete must not touch tasks", stored)
	}
	if d := cmp.Diff(map[string]json.RawMessage{"stays": json.RawMessage(`"kept"`)}, set.Present(stored)); d != "" {
		t.Errorf("shown right after the delete (-want +got):\n%s", d)
	}

	c := newCleaner(t, db, retention, cachetest.Config(t, ""))
	res, err := c.Run(ctx, now)
	if err != nil || !res.Complete {
		t.Fatalf("run: %+v, %v", res, err)
	}
	if res.FieldValues != tasks || res.DeletedFields != 1 {
		t.Errorf("purged %d values and %d fields, want %d and 1", res.FieldValues, res.DeletedFields, tasks)
	}
	var carrying, kept, rows int
	if err := db.Primary.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE fields ? $1), count(*) FILTER (WHERE fields ? $2),
       (SELECT count(*) FROM custom_fields)
FROM tasks`, gone.Key(), stays.Key()).Scan(&carrying, &kept, &rows); err != nil {
		t.Fatal(err)
	}
	if carrying != 0 || kept != tasks || rows != 1 {
		t.Errorf("after the tick: %d tasks carry the deleted key, %d the live one, %d definition rows; want 0, %d, 1", carrying, kept, rows, tasks)
	}
	if after := snapshot(); after != before {
		t.Error("the purge changed a task's version or updated_at")
	}
	again, err := c.Run(ctx, now)
	if err != nil || again.FieldValues != 0 || again.DeletedFields != 0 {
		t.Errorf("second run: %+v, %v", again, err)
	}
}
