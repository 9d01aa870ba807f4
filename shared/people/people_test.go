package people_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each step remembers an identity; the entry after it, and whether the
// row was written, are checked.
func TestRemember(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	version := func() (xmin string) {
		if err := db.Primary.QueryRow(ctx, "SELECT coalesce(max(xmin::text), '') FROM people WHERE subject = 'alice'").Scan(&xmin); err != nil {
			t.Fatal(err)
		}
		return xmin
	}
	steps := []struct {
		name    string
		id      auth.Identity
		want    people.Person
		written bool
	}{
		{"first call", auth.Identity{Subject: "alice", Username: "alice", Email: "alice@taskfn.test"},
			people.Person{Subject: "alice", Email: "alice@taskfn.test", Name: "alice"}, true},
		{"same again: no write", auth.Identity{Subject: "alice", Username: "alice", Email: "alice@taskfn.test"},
			people.Person{Subject: "alice", Email: "alice@taskfn.test", Name: "alice"}, false},
		{"token without email keeps the address", auth.Identity{Subject: "alice", Username: "alice"},
			people.Person{Subject: "alice", Email: "alice@taskfn.test", Name: "alice"}, false},
		{"new address", auth.Identity{Subject: "alice", Username: "alice", Email: "a@taskfn.test"},
			people.Person{Subject: "alice", Email: "a@taskfn.test", Name: "alice"}, true},
		{"malformed address ignored, control characters dropped", auth.Identity{Subject: "alice", Username: "al\nice", Email: "Alice <x@y>"},
			people.Person{Subject: "alice", Email: "a@taskfn.test", Name: "alice"}, false},
	}
	for _, s := range steps {
		before := version()
		if err := people.Remember(ctx, db.Primary, s.id); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := people.Lookup(ctx, db.Primary, []string{"alice", "nobody"})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(map[string]people.Person{"alice": s.want}, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, d)
		}
		if written := version() != before; written != s.written {
			t.Errorf("%s: written %v, want %v", s.name, written, s.written)
		}
	}
}

// The directory skips the database for an entry it stored already.
func TestDirectoryCaches(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	dir, err := people.New(db.Primary, 10)
	if err != nil {
		t.Fatal(err)
	}
	id := auth.Identity{Subject: "bob", Username: "bob", Email: "bob@taskfn.test"}
	if err := dir.Remember(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Primary.Exec(ctx, "DELETE FROM people"); err != nil {
		t.Fatal(err)
	}
	if err := dir.Remember(ctx, id); err != nil {
		t.Fatal(err)
	}
	got, _ := people.Lookup(ctx, db.Primary, []string{"bob"})
	if len(got) != 0 {
		t.Errorf("the unchanged entry went to the database again: %v", got)
	}
	id.Email = "robert@taskfn.test"
	if err := dir.Remember(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got, _ := people.Lookup(ctx, db.Primary, []string{"bob"}); got["bob"].Email != "robert@taskfn.test" {
		t.Errorf("a changed entry was not written: %v", got)
	}
}

// ByUsername finds the identity a person's latest token gave, within the
// age asked for; a username two subjects carried belongs to the one seen
// last.
func TestByUsername(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	for _, id := range []auth.Identity{
		{Subject: "s-alice", Username: "Alice", Email: "alice@taskfn.test", Roles: []auth.Role{auth.RoleMember},
			ProjectRoles: map[string]auth.ProjectRole{"web": auth.ProjectMember, "ops": auth.ProjectViewer}},
		{Subject: "s-bob", Username: "bob", Roles: []auth.Role{auth.RoleAdmin}},
		{Subject: "s-carol-old", Username: "carol", Roles: []auth.Role{auth.RoleMember}},
		{Subject: "s-carol", Username: "carol", Roles: []auth.Role{auth.RoleManager}},
	} {
		if err := people.Remember(ctx, db.Primary, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{
		`UPDATE people SET roles_seen_at = now() - interval '8 days' WHERE subject = 's-bob'`,
		`UPDATE people SET roles_seen_at = now() - interval '1 day' WHERE subject = 's-carol-old'`,
	} {
		if _, err := db.Primary.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	got, err := people.ByUsername(ctx, db.Primary, []string{"alice", "bob", "carol", "nobody"}, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]auth.Identity{
		"alice": {Subject: "s-alice", Username: "alice", Email: "alice@taskfn.test", Roles: []auth.Role{auth.RoleMember},
			ProjectRoles: map[string]auth.ProjectRole{"web": auth.ProjectMember, "ops": auth.ProjectViewer}},
		"carol": {Subject: "s-carol", Username: "carol", Roles: []auth.Role{auth.RoleManager}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("by username (-want +got):\n%s", d)
	}
	// A request refreshes what the directory knows: bob is back, and
	// alice's group role is gone.
	if err := people.Remember(ctx, db.Primary, auth.Identity{Subject: "s-bob", Username: "bob", Roles: []auth.Role{auth.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	if err := people.Remember(ctx, db.Primary, auth.Identity{Subject: "s-alice", Username: "alice", Roles: []auth.Role{auth.RoleMember}}); err != nil {
		t.Fatal(err)
	}
	got, err = people.ByUsername(ctx, db.Primary, []string{"alice", "bob"}, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got["bob"].Subject != "s-bob" || got["alice"].ProjectRoles != nil {
		t.Errorf("after new requests: %+v", got)
	}
}
