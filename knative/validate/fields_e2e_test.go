package validate

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// e2eCustomFieldValues is the black-box path of custom field values
// (issue #22) through the gateway: values on create, a list filtered by
// a field, and a move that drops a value and says so. TestFieldsEndToEnd
// calls it after driving the definitions routes, so the definitions here
// are made directly: two projects with a same-named field, to move
// between. It needs create-task, list-tasks and update-task behind gw,
// and carol a member token of subject "carol".
func e2eCustomFieldValues(t *testing.T, gwURL, dbURL string, carol http.Header) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`INSERT INTO projects (key, name, created_by) VALUES ('e2e-web', 'Web', 'e2e'), ('e2e-ops', 'Ops', 'e2e') ON CONFLICT DO NOTHING`,
		`INSERT INTO project_members (project, subject, role, added_by) VALUES ('e2e-web', 'carol', 'member', 'e2e'), ('e2e-ops', 'carol', 'member', 'e2e') ON CONFLICT DO NOTHING`,
		`INSERT INTO custom_fields (project, name, type, options, position, created_by) VALUES
		   ('e2e-web', 'severity', 'select', '[{"id": "hi", "name": "High"}, {"id": "lo", "name": "Low"}]', 0, 'e2e'),
		   ('e2e-web', 'note', 'text', '[]', 1, 'e2e'),
		   ('e2e-ops', 'severity', 'select', '[{"id": "h2", "name": "high"}]', 0, 'e2e')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	asJSON := func(h http.Header) http.Header { c := h.Clone(); c.Set("Content-Type", "application/json"); return c }
	type withFields struct {
		ID      string                     `json:"id"`
		Project string                     `json:"project"`
		Fields  map[string]json.RawMessage `json:"fields"`
	}
	var a withFields
	decodeReply(t, do(t, http.MethodPost, gwURL+"/tasks", strings.NewReader(`{"title": "A", "project": "e2e-web", "fields": {"severity": "hi", "note": "n"}}`), asJSON(carol)), http.StatusCreated, &a)
	decodeReply(t, do(t, http.MethodPost, gwURL+"/tasks", strings.NewReader(`{"title": "B", "project": "e2e-web", "fields": {"severity": "lo"}}`), asJSON(carol)), http.StatusCreated, nil)
	decodeReply(t, do(t, http.MethodPost, gwURL+"/tasks", strings.NewReader(`{"title": "C", "project": "e2e-web", "fields": {"severity": "nope"}}`), asJSON(carol)), http.StatusUnprocessableEntity, nil)

	var page struct{ Items []withFields }
	decodeReply(t, do(t, http.MethodGet, gwURL+"/tasks?project=e2e-web&field.severity=high", nil, carol), http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != a.ID || string(page.Items[0].Fields["severity"]) != `"hi"` {
		t.Errorf("filtered list: %+v", page.Items)
	}
	decodeReply(t, do(t, http.MethodGet, gwURL+"/tasks?field.severity=high", nil, carol), http.StatusUnprocessableEntity, nil)

	decodeReply(t, do(t, http.MethodPatch, gwURL+"/tasks/"+a.ID+"?drop_fields=false", strings.NewReader(`{"project": "e2e-ops"}`), asJSON(carol)), http.StatusUnprocessableEntity, nil)
	resp := do(t, http.MethodPatch, gwURL+"/tasks/"+a.ID, strings.NewReader(`{"project": "e2e-ops"}`), asJSON(carol))
	if got := resp.Header.Get("Dropped-Fields"); got != "note" {
		t.Errorf("Dropped-Fields %q, want note", got)
	}
	var moved withFields
	decodeReply(t, resp, http.StatusOK, &moved)
	if moved.Project != "e2e-ops" || string(moved.Fields["severity"]) != `"h2"` || len(moved.Fields) != 1 {
		t.Errorf("moved: %+v", moved)
	}
}
