package fieldapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/field"
)

var (
	admin   = []auth.Role{auth.RoleAdmin}
	manager = []auth.Role{auth.RoleManager}
	member  = []auth.Role{auth.RoleMember}
)

type fieldJSON struct {
	ID       int64          `json:"id"`
	Project  string         `json:"project"`
	Name     string         `json:"name"`
	Type     string         `json:"type"`
	Options  []field.Option `json:"options"`
	Required bool           `json:"required"`
	Position int            `json:"position"`
	Version  int64          `json:"version"`
}

// setUp makes project ops of maintainer carol, with viewer dave and
// member mia.
func setUp(t *testing.T) (p *pod, carol, dave, mia caller) {
	p = newPod(t)
	carol, dave, mia = caller{"carol", member}, caller{"dave", member}, caller{"mia", member}
	p.must(201, carol, "POST", "/projects", `{"key":"ops","name":"Ops"}`)
	p.must(201, carol, "PUT", "/projects/ops/members/dave", `{"role":"viewer"}`)
	p.must(201, carol, "PUT", "/projects/ops/members/mia", `{"role":"member"}`)
	return p, carol, dave, mia
}

func TestFieldLifecycle(t *testing.T) {
	t.Parallel()
	p, carol, dave, _ := setUp(t)
	var sev fieldJSON
	r := p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"severity","type":"select","options":[{"name":"low"},{"name":"high"}],"required":true}`)
	r.decode(t, &sev)
	if r.header.Get("Location") != fmt.Sprintf("/projects/ops/fields/%d", sev.ID) || r.header.Get("ETag") != `"1"` {
		t.Fatalf("headers %v", r.header)
	}
	if sev.Project != "ops" || sev.Type != "select" || !sev.Required || len(sev.Options) != 2 || !strings.HasPrefix(sev.Options[0].ID, "opt_") {
		t.Fatalf("created %s", r.body)
	}
	var est fieldJSON
	p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"estimate","type":"number"}`).decode(t, &est)
	if est.Position != 1 || len(est.Options) != 0 {
		t.Errorf("second field %+v", est)
	}
	var list struct{ Items []fieldJSON }
	p.must(200, dave, "GET", "/projects/ops/fields", "").decode(t, &list)
	if len(list.Items) != 2 || list.Items[0].ID != sev.ID {
		t.Fatalf("list %+v", list.Items)
	}
	path := fmt.Sprintf("/projects/ops/fields/%d", sev.ID)
	p.must(200, dave, "GET", path, "")
	p.must(404, dave, "GET", "/projects/ops/fields/999999", "")
	p.must(404, dave, "GET", "/projects/ops/fields/x1", "")
	p.must(400, dave, "GET", "/projects/ops/fields?limit=3", "")

	// PATCH: rename, rename an option, add one, make optional, move first.
	patch := fmt.Sprintf(`{"name":"Sev","options":[{"id":%q,"name":"Low"},{"name":"mid"},{"id":%q,"name":"high"}],"required":false,"position":1}`,
		sev.Options[0].ID, sev.Options[1].ID)
	p.must(412, carol, "PATCH", path, patch, "If-Match", `"5"`)
	var up fieldJSON
	r = p.must(200, carol, "PATCH", path, patch, "If-Match", `"1"`)
	r.decode(t, &up)
	if up.Name != "Sev" || up.Required || up.Position != 1 || len(up.Options) != 3 || up.Options[0].ID != sev.Options[0].ID ||
		up.Options[0].Name != "Low" || up.Options[2].ID != sev.Options[1].ID || up.Version != 2 || r.header.Get("ETag") != `"2"` {
		t.Fatalf("patched %s", r.body)
	}
	p.must(200, dave, "GET", "/projects/ops/fields", "").decode(t, &list)
	if list.Items[0].ID != est.ID || list.Items[1].ID != sev.ID {
		t.Errorf("order after the move %+v", list.Items)
	}

	// Delete: gone at once, the name free again.
	p.must(412, carol, "DELETE", path, "", "If-Match", `"1"`)
	p.must(204, carol, "DELETE", path, "")
	p.must(404, carol, "GET", path, "")
	p.must(404, carol, "DELETE", path, "")
	p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"Sev","type":"text"}`)
}

// Access: viewers and members read; maintainers, admins write; a project
// the caller cannot see is 404, whatever the method.
func TestFieldAccess(t *testing.T) {
	t.Parallel()
	p, carol, dave, mia := setUp(t)
	var f fieldJSON
	p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"notes","type":"text"}`).decode(t, &f)
	path := fmt.Sprintf("/projects/ops/fields/%d", f.ID)
	stranger := caller{"erin", member}
	tests := []struct {
		name         string
		c            caller
		read, change int
	}{
		{"maintainer", carol, 200, 200},
		{"member", mia, 200, 403},
		{"viewer", dave, 200, 403},
		{"stranger", stranger, 404, 404},
		{"manager", caller{"mgr", manager}, 200, 403},
		{"admin", caller{"root", admin}, 200, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.must(tt.read, tt.c, "GET", "/projects/ops/fields", "")
			p.must(tt.read, tt.c, "GET", path, "")
			p.must(tt.change, tt.c, "PATCH", path, `{"name":"notes"}`)
			create := 201
			if tt.change != 200 {
				create = tt.change
			}
			p.must(create, tt.c, "POST", "/projects/ops/fields", fmt.Sprintf(`{"name":"by-%s","type":"checkbox"}`, tt.c.sub))
		})
	}
	p.must(404, stranger, "DELETE", path, "")
	p.must(403, dave, "DELETE", path, "")
	p.must(404, caller{"root", admin}, "GET", "/projects/nope/fields", "")
	p.must(404, carol, "GET", "/projects/NOPE/fields", "")
	// A caller's personal project, made on first use.
	p.must(200, carol, "GET", "/projects/~carol/fields", "")
	p.must(201, carol, "POST", "/projects/~carol/fields", `{"name":"mine","type":"date"}`)
	p.must(404, dave, "GET", "/projects/~carol/fields", "")
}

func TestFieldValidation(t *testing.T) {
	t.Parallel()
	p, carol, _, _ := setUp(t)
	var sel fieldJSON
	p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"tags","type":"multi_select","options":[{"name":"a"},{"name":"b"}]}`).decode(t, &sel)
	path := fmt.Sprintf("/projects/ops/fields/%d", sel.ID)
	a, b := sel.Options[0].ID, sel.Options[1].ID
	tests := []struct {
		name, method, path, body string
		status                   int
		field                    string // the first field named, for a 422
	}{
		{"no name", "POST", "/projects/ops/fields", `{"type":"text"}`, 422, "name"},
		{"blank name", "POST", "/projects/ops/fields", `{"name":" ","type":"text"}`, 422, "name"},
		{"long name", "POST", "/projects/ops/fields", `{"name":"` + strings.Repeat("n", 101) + `","type":"text"}`, 422, "name"},
		{"bad type", "POST", "/projects/ops/fields", `{"name":"x","type":"emoji"}`, 422, "type"},
		{"select without options", "POST", "/projects/ops/fields", `{"name":"x","type":"select"}`, 422, "options"},
		{"options on text", "POST", "/projects/ops/fields", `{"name":"x","type":"text","options":[{"name":"a"}]}`, 422, "options"},
		{"duplicate option", "POST", "/projects/ops/fields", `{"name":"x","type":"select","options":[{"name":"a"},{"name":"A"}]}`, 422, "options[1].name"},
		{"option id given", "POST", "/projects/ops/fields", `{"name":"x","type":"select","options":[{"id":"opt_x","name":"a"}]}`, 422, "options[0].id"},
		{"position on create", "POST", "/projects/ops/fields", `{"name":"x","type":"text","position":0}`, 422, "position"},
		{"read-only", "POST", "/projects/ops/fields", `{"name":"x","type":"text","version":3}`, 422, "version"},
		{"unknown member", "POST", "/projects/ops/fields", `{"name":"x","type":"text","colour":1}`, 400, ""},
		{"not JSON", "POST", "/projects/ops/fields", `{`, 400, ""},
		{"name taken", "POST", "/projects/ops/fields", `{"name":"TAGS","type":"text"}`, 409, ""},
		{"type change", "PATCH", path, `{"type":"select"}`, 422, "type"},
		{"same type", "PATCH", path, `{"type":"multi_select"}`, 200, ""},
		{"required on", "PATCH", path, `{"required":true}`, 422, "required"},
		{"option removed", "PATCH", path, fmt.Sprintf(`{"options":[{"id":%q,"name":"a"}]}`, a), 422, "options"},
		{"options reordered", "PATCH", path, fmt.Sprintf(`{"options":[{"id":%q,"name":"b"},{"id":%q,"name":"a"}]}`, b, a), 422, "options[1].id"},
		{"unknown option id", "PATCH", path, fmt.Sprintf(`{"options":[{"id":%q,"name":"a"},{"id":%q,"name":"b"},{"id":"opt_zzzzzzzz","name":"c"}]}`, a, b), 422, "options[2].id"},
		{"options null", "PATCH", path, `{"options":null}`, 422, "options"},
		{"negative position", "PATCH", path, `{"position":-1}`, 422, "position"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.must(tt.status, carol, tt.method, tt.path, tt.body)
			if tt.field == "" {
				return
			}
			var prob struct{ Errors []struct{ Field string } }
			r.decode(t, &prob)
			if len(prob.Errors) == 0 || prob.Errors[0].Field != tt.field {
				t.Errorf("errors %s, want %q first", r.body, tt.field)
			}
		})
	}
}

// The 51st field is a 409 too-many-fields: a state of the project (delete
// one first), not something wrong with the request.
func TestFieldLimit(t *testing.T) {
	t.Parallel()
	p, carol, _, _ := setUp(t)
	for i := range field.MaxPerProject {
		p.must(201, carol, "POST", "/projects/ops/fields", fmt.Sprintf(`{"name":"f%d","type":"text"}`, i))
	}
	r := p.must(409, carol, "POST", "/projects/ops/fields", `{"name":"one-more","type":"text"}`)
	if !strings.Contains(string(r.body), "too-many-fields") {
		t.Errorf("problem %s", r.body)
	}
	var list struct{ Items []fieldJSON }
	p.must(200, carol, "GET", "/projects/ops/fields", "").decode(t, &list)
	p.must(204, carol, "DELETE", fmt.Sprintf("/projects/ops/fields/%d", list.Items[0].ID), "")
	p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"one-more","type":"text"}`)
}

// TestFieldChangesReachCachedTasks: the task cache holds tasks with their
// values by name, so a rename and a delete must drop it: the next GET of
// a task read (and cached) before shows the new name, then no value.
func TestFieldChangesReachCachedTasks(t *testing.T) {
	t.Parallel()
	p, carol, _, _ := setUp(t)
	var est fieldJSON
	p.must(201, carol, "POST", "/projects/ops/fields", `{"name":"estimate","type":"number"}`).decode(t, &est)
	var tk struct {
		ID     string                     `json:"id"`
		Fields map[string]json.RawMessage `json:"fields"`
	}
	p.must(201, carol, "POST", "/tasks", `{"title":"Sized","project":"ops","fields":{"estimate":3}}`).decode(t, &tk)
	get := func() map[string]json.RawMessage {
		var got struct {
			Fields map[string]json.RawMessage `json:"fields"`
		}
		p.must(200, carol, "GET", "/tasks/"+tk.ID, "").decode(t, &got)
		return got.Fields
	}
	for range 2 { // the first read fills the cache, the second is served from it
		if f := get(); string(f["estimate"]) != "3" {
			t.Fatalf("before the rename: %v", f)
		}
	}
	path := fmt.Sprintf("/projects/ops/fields/%d", est.ID)
	p.must(200, carol, "PATCH", path, `{"name":"points"}`)
	if f := get(); len(f) != 1 || string(f["points"]) != "3" {
		t.Errorf("after the rename: %v, want points: 3", f)
	}
	p.must(204, carol, "DELETE", path, "")
	if f := get(); len(f) != 0 {
		t.Errorf("after the delete: %v, want none", f)
	}
}
