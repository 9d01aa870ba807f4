package project_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/project"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newStore(t *testing.T) (*project.Store, *pg.DB) {
	t.Helper()
	db := pgtest.New(t)
	s, err := project.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

func mustCreate(t *testing.T, s *project.Store, key, by string) project.Project {
	t.Helper()
	p, err := s.Create(t.Context(), project.Project{Key: key, Name: "Project " + key, CreatedBy: by})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateGetUpdateDelete(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	p := mustCreate(t, s, "ops", "alice")
	if p.Version != 1 || p.Personal || p.CreatedBy != "alice" || p.Name != "Project ops" {
		t.Fatalf("created %+v", p)
	}
	if _, err := s.Create(ctx, project.Project{Key: "ops", Name: "again", CreatedBy: "bob"}); !errors.Is(err, project.ErrExists) {
		t.Fatalf("duplicate key: %v, want ErrExists", err)
	}
	// The creator is its maintainer, in the same transaction.
	if roles, err := s.Memberships(ctx, "alice"); err != nil || roles["ops"] != auth.ProjectMaintainer {
		t.Fatalf("creator's roles %v, %v", roles, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, project.ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	up, err := s.Update(ctx, "ops", func(cur project.Project) (project.Project, error) {
		cur.Description = "runbooks"
		return cur, nil
	})
	if err != nil || up.Version != 2 || up.Description != "runbooks" {
		t.Fatalf("update: %+v %v", up, err)
	}
	same, err := s.Update(ctx, "ops", func(cur project.Project) (project.Project, error) { return cur, nil })
	if err != nil || same.Version != 2 {
		t.Fatalf("no-op update bumped: %+v %v", same, err)
	}
	// A project with a task is not deleted, and keeps its members.
	if _, err := db.Primary.Exec(ctx, `INSERT INTO tasks (id, title, status, priority, owner_id, project) VALUES (gen_random_uuid(), 't', 'todo', 'low', 'alice', 'ops')`); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "ops", func(project.Project) error { return nil }); !errors.Is(err, project.ErrNotEmpty) {
		t.Fatalf("delete non-empty: %v, want ErrNotEmpty", err)
	}
	if roles, _ := s.Memberships(ctx, "alice"); roles["ops"] != auth.ProjectMaintainer {
		t.Fatal("a refused delete removed members")
	}
	if _, err := db.Primary.Exec(ctx, `DELETE FROM tasks WHERE project = 'ops'`); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("no")
	if err := s.Delete(ctx, "ops", func(project.Project) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("check's error: %v", err)
	}
	if err := s.Delete(ctx, "ops", func(project.Project) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if roles, _ := s.Memberships(ctx, "alice"); len(roles) != 0 {
		t.Fatalf("members outlived their project: %v", roles)
	}
	// Personal projects: made on first use, never deleted, no members.
	if err := s.EnsurePersonal(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsurePersonal(ctx, "alice"); err != nil {
		t.Fatal("twice:", err)
	}
	pp, err := s.Get(ctx, "~alice")
	if err != nil || !pp.Personal {
		t.Fatalf("personal %+v %v", pp, err)
	}
	if err := s.Delete(ctx, "~alice", func(project.Project) error { return nil }); !errors.Is(err, project.ErrPersonal) {
		t.Fatalf("delete personal: %v", err)
	}
	if _, err := s.PutMember(ctx, "~alice", "bob", auth.ProjectViewer, "alice", false, func(project.Project) error { return nil }); !errors.Is(err, project.ErrPersonal) {
		t.Fatalf("member of personal: %v", err)
	}
}

func TestMembers(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	mustCreate(t, s, "web", "alice")
	ok := func(project.Project) error { return nil }
	ch, err := s.PutMember(ctx, "web", "bob", auth.ProjectMember, "alice", false, ok)
	if err != nil || !ch.Created || ch.Member.Role != "member" || ch.Member.AddedBy != "alice" {
		t.Fatalf("add: %+v %v", ch, err)
	}
	ch, err = s.PutMember(ctx, "web", "bob", auth.ProjectMember, "carol", false, ok)
	if err != nil || ch.Created || ch.Member.AddedBy != "alice" {
		t.Fatalf("same role again: %+v %v (nothing should change)", ch, err)
	}
	ch, err = s.PutMember(ctx, "web", "bob", auth.ProjectViewer, "carol", false, ok)
	if err != nil || ch.Created || ch.Member.Role != "viewer" || ch.Member.AddedBy != "carol" {
		t.Fatalf("change role: %+v %v", ch, err)
	}
	if _, err := s.PutMember(ctx, "nope", "bob", auth.ProjectViewer, "alice", false, ok); !errors.Is(err, project.ErrNotFound) {
		t.Fatalf("missing project: %v", err)
	}
	// alice is the last maintainer: neither demoted nor removed, unless forced (an admin).
	if _, err := s.PutMember(ctx, "web", "alice", auth.ProjectMember, "alice", false, ok); !errors.Is(err, project.ErrLastMaintainer) {
		t.Fatalf("demote last: %v", err)
	}
	if err := s.DeleteMember(ctx, "web", "alice", false, ok); !errors.Is(err, project.ErrLastMaintainer) {
		t.Fatalf("remove last: %v", err)
	}
	if _, err := s.PutMember(ctx, "web", "bob", auth.ProjectMaintainer, "alice", false, ok); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMember(ctx, "web", "alice", false, ok); err != nil {
		t.Fatalf("remove with another maintainer: %v", err)
	}
	if err := s.DeleteMember(ctx, "web", "bob", true, ok); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if err := s.DeleteMember(ctx, "web", "bob", true, ok); !errors.Is(err, project.ErrMemberNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	// Paging in subject order.
	for i := range 5 {
		if _, err := s.PutMember(ctx, "web", fmt.Sprintf("m%d", i), auth.ProjectViewer, "x", true, ok); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for {
		items, more, err := s.ListMembers(ctx, "web", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range items {
			got = append(got, m.Subject)
		}
		if !more {
			break
		}
		after = items[len(items)-1].Subject
	}
	if fmt.Sprint(got) != "[m0 m1 m2 m3 m4]" {
		t.Fatalf("members %v", got)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := t.Context()
	for _, k := range []string{"c1", "a1", "b1", "d1"} {
		mustCreate(t, s, k, "alice")
	}
	walk := func(q project.ListQuery) []string {
		var keys []string
		for {
			items, more, err := s.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range items {
				keys = append(keys, p.Key)
			}
			if !more {
				return keys
			}
			q.After = items[len(items)-1].Key
		}
	}
	tests := []struct {
		name string
		q    project.ListQuery
		want string
	}{
		{"all", project.ListQuery{All: true, Limit: 3}, "[a1 b1 c1 d1]"},
		{"some, with keys of no project", project.ListQuery{Keys: []string{"d1", "zz", "b1"}, Limit: 1}, "[b1 d1]"},
		{"none", project.ListQuery{Limit: 5}, "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(walk(tt.q)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestResolverBound: a member removed in one process is refused by
// another within the TTL (so within a second), and at once by the process
// that removed it; the cache serves repeated requests without reading the
// members table.
func TestResolverBound(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := t.Context()
	mustCreate(t, s, "red", "alice")
	ok := func(project.Project) error { return nil }
	if _, err := s.PutMember(ctx, "red", "bob", auth.ProjectMember, "alice", false, ok); err != nil {
		t.Fatal(err)
	}
	cfg := project.ResolverConfig{RolesTTL: 300 * time.Millisecond, RolesCacheSize: 100}
	here, err := project.OpenResolver(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	there, err := project.OpenResolver(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	bob := auth.Identity{Subject: "bob", Roles: []auth.Role{auth.RoleMember}}
	role := func(r *project.Resolver) auth.ProjectRole {
		t.Helper()
		a, err := r.Access(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		return a.Role("red")
	}
	if role(here) != auth.ProjectMember || role(there) != auth.ProjectMember {
		t.Fatal("bob is no member")
	}
	// Cached: a database change is not seen until the TTL or a Forget.
	if _, err := db.Primary.Exec(ctx, `DELETE FROM project_members WHERE subject = 'bob'`); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	here.Forget("bob")
	if role(here) != auth.NoProjectRole {
		t.Fatal("the process that removed bob still lets him in")
	}
	if role(there) != auth.ProjectMember {
		t.Fatal("the other process did not cache (the test proves nothing)")
	}
	for role(there) != auth.NoProjectRole {
		if time.Since(removed) > time.Second {
			t.Fatal("the other process let bob in for more than a second")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Since(removed); d < cfg.RolesTTL/2 {
		t.Errorf("refused after %s: the cache did not hold its TTL", d)
	}
}

func TestResolverConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg project.ResolverConfig
		ok  bool
	}{
		{project.ResolverConfig{RolesTTL: 900 * time.Millisecond, RolesCacheSize: 10}, true},
		{project.ResolverConfig{}, true}, // no cache
		{project.ResolverConfig{RolesTTL: time.Second}, false},
		{project.ResolverConfig{RolesTTL: -time.Millisecond}, false},
		{project.ResolverConfig{RolesCacheSize: -1}, false},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.cfg, err)
		}
	}
}

func TestAccess(t *testing.T) {
	t.Parallel()
	id := auth.Identity{Subject: "me", Roles: []auth.Role{auth.RoleMember},
		ProjectRoles: map[string]auth.ProjectRole{"g": auth.ProjectViewer, "both": auth.ProjectMaintainer}}
	a := project.Partial(id)
	for key, want := range map[string]auth.ProjectRole{"~me": auth.ProjectMaintainer, "g": auth.ProjectViewer, "both": auth.ProjectMaintainer, "~you": auth.NoProjectRole, "x": auth.NoProjectRole} {
		if got := a.Role(key); got != want {
			t.Errorf("Role(%q) = %v, want %v", key, got, want)
		}
	}
	if fmt.Sprint(a.Visible()) != "[~me both g]" {
		t.Errorf("visible %v", a.Visible())
	}
	none := project.Partial(auth.Identity{Subject: "me", ProjectRoles: id.ProjectRoles})
	if none.Role("~me") != auth.NoProjectRole || none.Role("g") != auth.NoProjectRole || len(none.Visible()) != 0 {
		t.Error("a token without a taskfn role holds project roles")
	}
}
