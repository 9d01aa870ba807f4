package taskapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/field"
)

// fieldDefs makes project key (carol a member) and its definitions, as
// the definitions routes would, and returns them by name.
func (e *env) fieldDefs(t *testing.T, key string, defs ...field.Definition) (*field.Store, map[string]field.Definition) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.db.Primary.Exec(ctx, `INSERT INTO projects (key, name, created_by) VALUES ($1, $1, 'x') ON CONFLICT DO NOTHING`, key); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Primary.Exec(ctx, `INSERT INTO project_members (project, subject, role, added_by) VALUES ($1, $2, 'member', 'x') ON CONFLICT DO NOTHING`, key, carol); err != nil {
		t.Fatal(err)
	}
	s, err := field.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]field.Definition{}
	for _, d := range defs {
		d.Project, d.CreatedBy = key, "x"
		c, err := s.Create(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		out[c.Name] = c
	}
	return s, out
}

// TestFieldsThroughAPI: values on create and PATCH by name, a 422 naming
// fields.<name> that writes nothing, list filters and their 422s, a move
// that drops (Dropped-Fields) or, with drop_fields=false, refuses; and
// GET through the cache showing a rename and a delete at once.
func TestFieldsThroughAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	defs, web := e.fieldDefs(t, "web",
		field.Definition{Name: "points", Type: field.Number},
		field.Definition{Name: "note", Type: field.Text},
		field.Definition{Name: "severity", Type: field.Select, Options: []field.Option{{Name: "Low"}, {Name: "High"}}})
	e.fieldDefs(t, "ops", field.Definition{Name: "points", Type: field.Number})
	high := web["severity"].Options[1].ID

	rows := e.rows()
	bad := e.do(req{method: "POST", path: "/tasks", as: carol, body: map[string]any{"title": "x", "project": "web", "fields": map[string]any{"points": "many", "nope": 1}}})
	if bad.status != http.StatusUnprocessableEntity || !strings.Contains(string(bad.body), `"fields.points"`) || !strings.Contains(string(bad.body), `"fields.nope"`) || e.rows() != rows {
		t.Fatalf("invalid values: %d %s", bad.status, bad.body)
	}
	tk := e.create(carol, map[string]any{"title": "a", "project": "web", "fields": map[string]any{"points": 3, "note": "n", "severity": high}})
	if string(tk.Fields["points"]) != "3" || len(tk.Fields) != 3 {
		t.Fatalf("created with %v", tk.Fields)
	}
	plain := e.create(carol, map[string]any{"title": "b", "project": "web"})
	if r := e.do(req{method: "GET", path: "/tasks/" + plain.ID.String(), as: carol}); !strings.Contains(string(r.body), `"fields":{}`) {
		t.Errorf("a task without values: %s", r.body)
	}
	path := "/tasks/" + tk.ID.String()
	up := e.do(req{method: "PATCH", path: path, as: carol, body: `{"fields": {"points": 4, "note": null}}`, contentType: "application/merge-patch+json"})
	if up.status != 200 || len(up.task(t).Fields) != 2 || string(up.task(t).Fields["points"]) != "4" {
		t.Fatalf("patch: %d %s", up.status, up.body)
	}

	for _, tc := range []struct {
		query  string
		status int
		want   int // items
	}{
		{"?project=web&field.severity=high", 200, 1},
		{"?project=web&field.points[gte]=4&field.points[lte]=4", 200, 1},
		{"?project=web&field.points[gte]=5", 200, 0},
		{"?field.severity=high", 422, 0},
		{"?project=web&field.nope=1", 422, 0},
		{"?project=web&field.severity[gte]=high", 422, 0},
		{"?project=web&field.[gte]=1", 400, 0},
	} {
		r := e.do(req{method: "GET", path: "/tasks" + tc.query, as: carol})
		if r.status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.query, r.status, r.body, tc.status)
			continue
		}
		if r.status == 200 {
			var page struct{ Items []json.RawMessage }
			r.decode(t, &page)
			if len(page.Items) != tc.want {
				t.Errorf("%s: %d items, want %d", tc.query, len(page.Items), tc.want)
			}
		}
	}

	// GET fills the cache; a rename and a delete show on the next GET.
	e.do(req{method: "GET", path: path, as: carol})
	ctx := context.Background()
	if _, err := defs.Update(ctx, "web", web["points"].ID, func(cur field.Definition) (field.Definition, error) { cur.Name = "estimate"; return cur, nil }); err != nil {
		t.Fatal(err)
	}
	if err := defs.Delete(ctx, "web", web["severity"].ID, func(field.Definition) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.FieldsChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.do(req{method: "GET", path: path, as: carol}).task(t); len(got.Fields) != 1 || string(got.Fields["estimate"]) != "4" {
		t.Errorf("after rename and delete: %v", got.Fields)
	}

	// Moves: refused with drop_fields=false, else done, the drop named.
	again := e.create(carol, map[string]any{"title": "c", "project": "web", "fields": map[string]any{"estimate": 1}})
	if _, err := defs.Create(ctx, field.Definition{Project: "web", Name: "note2", Type: field.Text, CreatedBy: "x"}); err != nil {
		t.Fatal(err)
	}
	mpath := "/tasks/" + again.ID.String()
	e.do(req{method: "PATCH", path: mpath, as: carol, body: `{"fields": {"note2": "x"}}`})
	refused := e.do(req{method: "PATCH", path: mpath + "?drop_fields=false", as: carol, body: `{"project": "ops"}`})
	if refused.status != 422 || !strings.Contains(string(refused.body), `"fields.estimate"`) || !strings.Contains(string(refused.body), `"fields.note2"`) {
		t.Fatalf("refused move: %d %s", refused.status, refused.body)
	}
	moved := e.do(req{method: "PATCH", path: mpath, as: carol, body: `{"project": "ops", "fields": {"points": 2}}`})
	if moved.status != 200 || moved.header.Get(DroppedFieldsHeader) != "estimate, note2" || string(moved.task(t).Fields["points"]) != "2" {
		t.Errorf("move: %d %q %s", moved.status, moved.header.Get(DroppedFieldsHeader), moved.body)
	}
}
