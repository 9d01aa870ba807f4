package field_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/project"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t *testing.T, projects ...string) (*field.Store, *pg.DB) {
	t.Helper()
	db := pgtest.New(t)
	for _, p := range projects {
		if _, err := db.Primary.Exec(t.Context(), `INSERT INTO projects (key, name, created_by) VALUES ($1, $1, 'alice')`, p); err != nil {
			t.Fatal(err)
		}
	}
	s, err := field.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func create(t *testing.T, s *field.Store, d field.Definition) field.Definition {
	t.Helper()
	if d.CreatedBy == "" {
		d.CreatedBy = "alice"
	}
	got, err := s.Create(t.Context(), d)
	if err != nil {
		t.Fatalf("create %s: %v", d.Name, err)
	}
	return got
}

func TestStoreCreateListUpdateDelete(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, "ops", "web")
	sev := create(t, s, field.Definition{Project: "ops", Name: "severity", Type: field.Select,
		Options: []field.Option{{Name: "low"}, {Name: "high"}}})
	est := create(t, s, field.Definition{Project: "ops", Name: "estimate", Type: field.Number, Required: true})
	create(t, s, field.Definition{Project: "web", Name: "estimate", Type: field.Number})
	if sev.Position != 0 || est.Position != 1 || sev.Version != 1 {
		t.Errorf("positions %d %d version %d", sev.Position, est.Position, sev.Version)
	}
	if len(sev.Options) != 2 || sev.Options[0].ID == "" || sev.Options[0].ID == sev.Options[1].ID {
		t.Errorf("options %+v: want two distinct ids", sev.Options)
	}
	if _, err := s.Create(ctx, field.Definition{Project: "ops", Name: "SEVERITY", Type: field.Text, CreatedBy: "a"}); !errors.Is(err, field.ErrNameTaken) {
		t.Errorf("same name, other case: %v, want ErrNameTaken", err)
	}
	if _, err := s.Create(ctx, field.Definition{Project: "nope", Name: "x", Type: field.Text, CreatedBy: "a"}); !errors.Is(err, project.ErrNotFound) {
		t.Errorf("no such project: %v", err)
	}

	m, err := s.LoadMany(ctx, []string{"ops", "web", "none"})
	if err != nil {
		t.Fatal(err)
	}
	if len(m["ops"]) != 2 || m["ops"][0].Name != "severity" || len(m["web"]) != 1 || m["none"] == nil || len(m["none"]) != 0 {
		t.Errorf("LoadMany = %+v", m)
	}

	// Rename an option, add one, move estimate first: ids stay.
	up, err := s.Update(ctx, "ops", sev.ID, func(cur field.Definition) (field.Definition, error) {
		cur.Options = append([]field.Option{{ID: cur.Options[0].ID, Name: "Low"}, cur.Options[1]}, field.Option{Name: "urgent"})
		cur.Name = "Severity"
		cur.Position = 1
		return cur, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Version != 2 || up.Name != "Severity" || up.Position != 1 || len(up.Options) != 3 || up.Options[0].ID != sev.Options[0].ID || up.Options[2].ID == "" {
		t.Errorf("updated %+v", up)
	}
	got, err := s.Load(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if got[0].ID != est.ID || got[0].Position != 0 || got[0].Version != 2 || got[1].ID != sev.ID {
		t.Errorf("after the move: %+v", got)
	}
	// Nothing changed: nothing written.
	same, err := s.Update(ctx, "ops", sev.ID, func(cur field.Definition) (field.Definition, error) { return cur, nil })
	if err != nil || same.Version != up.Version {
		t.Errorf("no-op update: %+v, %v", same, err)
	}
	if _, err := s.Update(ctx, "web", sev.ID, func(cur field.Definition) (field.Definition, error) { return cur, nil }); !errors.Is(err, field.ErrNotFound) {
		t.Errorf("update through another project: %v", err)
	}

	if err := s.Delete(ctx, "ops", sev.ID, func(field.Definition) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "ops", sev.ID); !errors.Is(err, field.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if err := s.Delete(ctx, "ops", sev.ID, func(field.Definition) error { return nil }); !errors.Is(err, field.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	// The name is free again; the new field has a new id.
	again := create(t, s, field.Definition{Project: "ops", Name: "severity", Type: field.Text})
	if again.ID == sev.ID {
		t.Error("a re-made field reused the deleted one's id")
	}
}

// The 51st field is refused, however many creates race for the last
// places.
func TestStoreLimitUnderRace(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, "ops")
	for i := range field.MaxPerProject - 5 {
		create(t, s, field.Definition{Project: "ops", Name: fmt.Sprintf("f%d", i), Type: field.Text})
	}
	var wg sync.WaitGroup
	errc := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := s.Create(context.Background(), field.Definition{Project: "ops", Name: fmt.Sprintf("race%d", i), Type: field.Text, CreatedBy: "a"})
			errc <- err
		})
	}
	wg.Wait()
	close(errc)
	var ok, full int
	for err := range errc {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, field.ErrTooMany):
			full++
		default:
			t.Errorf("create: %v", err)
		}
	}
	got, err := s.Load(t.Context(), "ops")
	if err != nil {
		t.Fatal(err)
	}
	if ok != 5 || full != 15 || len(got) != field.MaxPerProject {
		t.Errorf("%d created, %d refused, %d live; want 5, 15, %d", ok, full, len(got), field.MaxPerProject)
	}
}

// A deleted field's values are hidden at once and purged in batches,
// without touching the tasks' versions; then its row goes.
func TestStorePurgeDeleted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, db := newStore(t, "ops")
	gone := create(t, s, field.Definition{Project: "ops", Name: "gone", Type: field.Text})
	stays := create(t, s, field.Definition{Project: "ops", Name: "stays", Type: field.Checkbox})
	const tasks = 7
	for range tasks {
		fields := fmt.Sprintf(`{%q: "x", %q: true}`, gone.Key(), stays.Key())
		if _, err := db.Primary.Exec(ctx, `
INSERT INTO tasks (id, title, status, priority, owner_id, project, fields)
VALUES ($1, 't', 'todo', 'low', 'alice', 'ops', $2)`, uuid.Must(uuid.NewV7()), fields); err != nil {
			t.Fatal(err)
		}
	}
	versions := func() string {
		var v string
		if err := db.Primary.QueryRow(ctx, `SELECT string_agg(version || '@' || updated_at, ',' ORDER BY id) FROM tasks`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := versions()
	if err := s.Delete(ctx, "ops", gone.ID, func(field.Definition) error { return nil }); err != nil {
		t.Fatal(err)
	}
	set, err := s.Load(ctx, "ops")
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]json.RawMessage
	if err := db.Primary.QueryRow(ctx, `SELECT fields FROM tasks LIMIT 1`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]json.RawMessage{"stays": raw(`true`)}, set.Present(stored)); diff != "" {
		t.Errorf("shown right after the delete (-want +got):\n%s", diff)
	}

	var total field.Purged
	for i := 0; ; i++ {
		p, err := s.PurgeDeleted(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if p.Values > 3 {
			t.Errorf("a batch of 3 purged %d values", p.Values)
		}
		total.Values += p.Values
		total.Definitions += p.Definitions
		if p == (field.Purged{}) || i > 10 {
			break
		}
	}
	if total.Values != tasks || total.Definitions != 1 {
		t.Errorf("purged %+v, want %d values and 1 definition", total, tasks)
	}
	var left, rows int
	if err := db.Primary.QueryRow(ctx, `SELECT count(*) FILTER (WHERE fields ? $1), count(*) FILTER (WHERE fields ? $2) FROM tasks`, gone.Key(), stays.Key()).Scan(&left, &rows); err != nil {
		t.Fatal(err)
	}
	if left != 0 || rows != tasks {
		t.Errorf("%d tasks still carry the deleted key, %d the live one (want 0, %d)", left, rows, tasks)
	}
	var defs int
	if err := db.Primary.QueryRow(ctx, `SELECT count(*) FROM custom_fields`).Scan(&defs); err != nil {
		t.Fatal(err)
	}
	if defs != 1 {
		t.Errorf("%d definition rows, want 1", defs)
	}
	if after := versions(); after != before {
		t.Errorf("the purge changed tasks' versions or updated_at:\n%s\n%s", before, after)
	}
}
