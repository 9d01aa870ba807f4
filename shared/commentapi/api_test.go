package commentapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/cache/cachetest"
	"github.com/taskfn/taskfn/shared/commentapi"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/projectapi"
	"github.com/taskfn/taskfn/shared/taskapi"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// env serves the task, project and comment routes as the dev runner
// wires them.
type env struct {
	t   testing.TB
	db  *pg.DB
	url string
	iss *authtest.Issuer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	iss := authtest.NewIssuer(t)
	cfg := taskapi.Config{
		Config: function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)},
		Auth:   iss.Config(),
		Cache:  cachetest.Config(t, ""),
	}
	cachetest.Cleanup(t, cfg.Cache)
	svc, err := taskapi.Open(t.Context(), "commentapi-test", cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	ps, err := projectapi.Wire(svc.Base, projectapi.Config{Config: cfg.Config, Auth: cfg.Auth}, nil, svc.Roles)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := commentapi.Wire(svc.Base, commentapi.Config{Config: cfg.Config, Auth: cfg.Auth}, nil, svc.Cache, svc.Roles, nil)
	if err != nil {
		t.Fatal(err)
	}
	routes := append(append(svc.Routes, ps.Routes...), cs...)
	srv := httpxtest.Serve(t, svc.Handler(routes...))
	return &env{t: t, db: svc.DB, url: srv.URL, iss: iss}
}

type who struct {
	sub    string
	roles  []auth.Role
	groups []string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(c who, method, path string, body any, header ...string) reply {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	claims := e.iss.Claims(c.sub, c.roles...)
	if c.groups != nil {
		claims["groups"] = c.groups
	}
	req.Header.Set("Authorization", "Bearer "+e.iss.Sign(e.t, claims))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	apispec.Check(e.t, method, path, resp, b)
	return reply{resp.StatusCode, resp.Header, b}
}

func (e *env) must(want int, c who, method, path string, body any, header ...string) reply {
	e.t.Helper()
	r := e.do(c, method, path, body, header...)
	if r.status != want {
		e.t.Fatalf("%s %s as %s: %d %s, want %d", method, path, c.sub, r.status, r.body, want)
	}
	return r
}

func decode[T any](t testing.TB, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	return v
}

type commentJSON struct {
	ID       string  `json:"id"`
	Author   string  `json:"author"`
	Body     string  `json:"body"`
	EditedAt *string `json:"edited_at"`
	Version  int64   `json:"version"`
}

var seq atomic.Int64

func fresh(p string) string { return fmt.Sprintf("%s%d", p, seq.Add(1)) }

// TestCommentMatrix is every cell of global role × project role × whether
// the caller is the task's assignee, for reading, commenting, editing one's
// own comment, and deleting another's.
func TestCommentMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	globals := map[string][]auth.Role{"admin": {auth.RoleAdmin}, "manager": {auth.RoleManager}, "member": {auth.RoleMember}}
	// list, comment, edit own, delete another's.
	want := map[string]string{
		"admin/none": "200 201 200 204", "admin/viewer": "200 201 200 204", "admin/member": "200 201 200 204", "admin/maintainer": "200 201 200 204",
		"manager/none": "200 201 200 403", "manager/viewer": "200 201 200 403", "manager/member": "200 201 200 403", "manager/maintainer": "200 201 200 204",
		"member/none": "404 404 404 404", "member/viewer": "200 403 404 403", "member/member": "200 201 200 403", "member/maintainer": "200 201 200 204",
		"member/none+assignee": "200 201 200 403", "member/viewer+assignee": "200 201 200 403",
	}
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			g, pr, _ := strings.Cut(name, "/")
			pr, asAssignee := strings.CutSuffix(pr, "+assignee")
			owner := who{sub: fresh("owner-"), roles: []auth.Role{auth.RoleMember}}
			key := fresh("c-")
			e.must(201, owner, "POST", "/projects", map[string]any{"key": key, "name": "C"})
			me := who{sub: fresh("me-"), roles: globals[g]}
			if pr != "none" {
				me.groups = []string{"/projects/" + key + "/" + pr}
			}
			body := map[string]any{"title": "talk", "project": key}
			if asAssignee {
				body["assignee_id"] = me.sub
			}
			tk := decode[struct{ ID string }](t, e.must(201, owner, "POST", "/tasks", body))
			theirs := decode[commentJSON](t, e.must(201, owner, "POST", "/tasks/"+tk.ID+"/comments", map[string]any{"body": "owner's"}))
			var got []string
			got = append(got, fmt.Sprint(e.do(me, "GET", "/tasks/"+tk.ID+"/comments", nil).status))
			r := e.do(me, "POST", "/tasks/"+tk.ID+"/comments", map[string]any{"body": "mine"})
			got = append(got, fmt.Sprint(r.status))
			mineID := theirs.ID // edited below: someone else's comment when mine could not be made
			if r.status == 201 {
				mineID = decode[commentJSON](t, r).ID
			}
			edit := e.do(me, "PATCH", "/comments/"+mineID, map[string]any{"body": "mine, edited"})
			if r.status != 201 && edit.status == 403 {
				edit.status = 404 // no comment of mine: the cell says there was none to edit
			}
			got = append(got, fmt.Sprint(edit.status))
			got = append(got, fmt.Sprint(e.do(me, "DELETE", "/comments/"+theirs.ID, nil).status))
			if g := strings.Join(got, " "); g != w {
				t.Errorf("got %s, want %s (list, comment, edit own, delete another's)", g, w)
			}
		})
	}
}

// TestCommentLifecycle: create, list in order with paging, edit under
// If-Match (edited_at set), delete, each with its history line; another's
// edit refused; bad bodies refused.
func TestCommentLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := who{sub: fresh("carol-"), roles: []auth.Role{auth.RoleMember}}
	dave := who{sub: fresh("dave-"), roles: []auth.Role{auth.RoleMember}}
	tk := decode[struct{ ID string }](t, e.must(201, carol, "POST", "/tasks", map[string]any{"title": "discuss", "assignee_id": dave.sub}))
	base := "/tasks/" + tk.ID + "/comments"
	for _, b := range []any{map[string]any{"body": ""}, map[string]any{"body": "  \n"}, map[string]any{"body": strings.Repeat("x", 10001)}, map[string]any{}, map[string]any{"body": "a\u0000b"}} {
		e.must(422, carol, "POST", base, b)
	}
	e.must(400, carol, "POST", base, map[string]any{"body": "x", "pinned": true})
	var ids []string
	for i := range 5 {
		c := decode[commentJSON](t, e.must(201, []who{carol, dave}[i%2], "POST", base, map[string]any{"body": fmt.Sprintf("**comment** %d", i)}))
		ids = append(ids, c.ID)
	}
	var seen []string
	cursor := ""
	for {
		p := decode[struct {
			Items []commentJSON
			Next  *string `json:"next_cursor"`
		}](t, e.must(200, dave, "GET", base+"?limit=2"+cursor, nil))
		for _, c := range p.Items {
			seen = append(seen, c.ID)
		}
		if p.Next == nil {
			break
		}
		cursor = "&cursor=" + *p.Next
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Fatalf("listed %v, want %v", seen, ids)
	}
	e.must(403, dave, "PATCH", "/comments/"+ids[0], map[string]any{"body": "not mine"})
	e.must(412, carol, "PATCH", "/comments/"+ids[0], map[string]any{"body": "edited"}, "If-Match", `"2"`)
	ed := decode[commentJSON](t, e.must(200, carol, "PATCH", "/comments/"+ids[0], map[string]any{"body": "edited"}, "If-Match", `"1"`))
	if ed.EditedAt == nil || ed.Version != 2 || ed.Body != "edited" {
		t.Fatalf("edited %+v", ed)
	}
	e.must(403, dave, "DELETE", "/comments/"+ids[0], nil)
	e.must(204, carol, "DELETE", "/comments/"+ids[0], nil)
	e.must(404, carol, "DELETE", "/comments/"+ids[0], nil)
	e.must(404, carol, "PATCH", "/comments/not-an-id", map[string]any{"body": "x"})
	// A stranger sees none of it.
	zed := who{sub: fresh("zed-"), roles: []auth.Role{auth.RoleMember}}
	e.must(404, zed, "GET", base, nil)
	e.must(404, zed, "POST", base, map[string]any{"body": "hi"})
	e.must(404, zed, "PATCH", "/comments/"+ids[1], map[string]any{"body": "hi"})
	// The history: five added, one removed; the events: five created, one updated, one deleted.
	var added, removed, created, updated, deleted int
	err := e.db.Primary.QueryRow(context.Background(), `
SELECT count(*) FILTER (WHERE kind = 'comment_added'), count(*) FILTER (WHERE kind = 'comment_removed') FROM task_activity WHERE task_id = $1`, tk.ID).Scan(&added, &removed)
	if err != nil || added != 5 || removed != 1 {
		t.Fatalf("history: %d added, %d removed (%v)", added, removed, err)
	}
	err = e.db.Primary.QueryRow(context.Background(), `
SELECT count(*) FILTER (WHERE type = 'dev.taskfn.comment.created.v1'), count(*) FILTER (WHERE type = 'dev.taskfn.comment.updated.v1'),
       count(*) FILTER (WHERE type = 'dev.taskfn.comment.deleted.v1') FROM outbox WHERE key = $1`, tk.ID).Scan(&created, &updated, &deleted)
	if err != nil || created != 5 || updated != 1 || deleted != 1 {
		t.Fatalf("events: %d created, %d updated, %d deleted (%v)", created, updated, deleted, err)
	}
	// Kept with the task in the trash, purged with it.
	e.must(204, carol, "DELETE", "/tasks/"+tk.ID, nil)
	e.must(404, carol, "GET", base, nil)
	var kept int
	if err := e.db.Primary.QueryRow(context.Background(), `SELECT count(*) FROM comments WHERE task_id = $1`, tk.ID).Scan(&kept); err != nil || kept != 4 {
		t.Fatalf("%d comments kept in the trash, want 4 (%v)", kept, err)
	}
	e.must(204, carol, "DELETE", "/trash/"+tk.ID, nil)
	var left int
	if err := e.db.Primary.QueryRow(context.Background(), `SELECT count(*) FROM comments WHERE task_id = $1`, tk.ID).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d comments outlived their task (%v)", left, err)
	}
}

// TestMentions: through the routes, a comment's @mentions reach the
// people who may see the task — by API membership, by a group of their
// latest token, by assignment — and nobody else; each is told once per
// comment, however the comment is edited.
func TestMentions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	member := []auth.Role{auth.RoleMember}
	author := who{sub: fresh("author-"), roles: member}
	key := fresh("m-")
	e.must(201, author, "POST", "/projects", map[string]any{"key": key, "name": "M"})
	viaAPI := who{sub: fresh("api-"), roles: member}
	later := who{sub: fresh("later-"), roles: member}
	viaGroup := who{sub: fresh("group-"), roles: member, groups: []string{"/projects/" + key + "/viewer"}}
	stale := who{sub: fresh("stale-"), roles: member, groups: []string{"/projects/" + key + "/viewer"}}
	outsider := who{sub: fresh("out-"), roles: member}
	assignee := who{sub: fresh("assignee-"), roles: member}
	unseen := fresh("unseen-")
	for _, p := range []who{viaAPI, later} {
		e.must(201, author, "PUT", "/projects/"+key+"/members/"+p.sub, map[string]any{"role": "viewer"})
	}
	// Each is remembered by a request of theirs; stale's was 8 days ago.
	for _, p := range []who{viaAPI, later, viaGroup, stale, outsider, assignee} {
		e.must(200, p, "GET", "/projects", nil)
	}
	if _, err := e.db.Primary.Exec(t.Context(), `UPDATE people SET roles_seen_at = now() - interval '8 days' WHERE subject = $1`, stale.sub); err != nil {
		t.Fatal(err)
	}
	tk := decode[struct{ ID string }](t, e.must(201, author, "POST", "/tasks", map[string]any{"title": "talk", "project": key, "assignee_id": assignee.sub}))
	mentioned := func() [][]string {
		t.Helper()
		const q = `SELECT coalesce(data->'mentioned', '[]') FROM outbox WHERE key = $1 AND type LIKE 'dev.taskfn.comment.%' ORDER BY id`
		rows, _ := e.db.Primary.Query(t.Context(), q, tk.ID)
		out, err := pgx.CollectRows(rows, pgx.RowTo[[]string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	at := func(ps ...string) string {
		var b strings.Builder
		for _, p := range ps {
			b.WriteString("@" + strings.ToUpper(p) + ", ")
		}
		return b.String()
	}
	body := at(viaAPI.sub, viaGroup.sub, stale.sub, outsider.sub, assignee.sub, unseen, author.sub) + "`@" + later.sub + "` please look"
	c := decode[commentJSON](t, e.must(201, author, "POST", "/tasks/"+tk.ID+"/comments", map[string]any{"body": body}))
	edits := []string{
		at(viaGroup.sub, later.sub) + "and nobody else", // later is new; viaAPI dropped
		at(viaAPI.sub, later.sub, outsider.sub),         // viaAPI back: told already
	}
	for _, b := range edits {
		e.must(200, author, "PATCH", "/comments/"+c.ID, map[string]any{"body": b})
	}
	want := [][]string{{viaAPI.sub, viaGroup.sub, assignee.sub}, {later.sub}, {}}
	if d := cmp.Diff(want, mentioned()); d != "" {
		t.Errorf("mentioned per event (-want +got):\n%s", d)
	}
}
