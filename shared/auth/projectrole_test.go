package auth

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGroupRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		groups []string
		prefix string
		want   map[string]ProjectRole
	}{
		{"none", nil, "/projects/", nil},
		{"one of each role", []string{"/projects/web/viewer", "/projects/api/member", "/projects/ops/maintainer"}, "/projects/",
			map[string]ProjectRole{"web": ProjectViewer, "api": ProjectMember, "ops": ProjectMaintainer}},
		{"the strongest wins", []string{"/projects/web/member", "/projects/web/maintainer", "/projects/web/viewer"}, "/projects/",
			map[string]ProjectRole{"web": ProjectMaintainer}},
		{"other groups ignored", []string{"/staff", "/projects", "/projects/", "/projects/web", "/teams/web/member"}, "/projects/", nil},
		{"unknown role ignored", []string{"/projects/web/owner", "/projects/web/Member", "/projects/web/member/extra"}, "/projects/", nil},
		{"invalid key ignored", []string{"/projects/Web/member", "/projects/w/member", "/projects/~alice/member", "/projects/a_b/member"}, "/projects/", nil},
		{"another prefix", []string{"/projects/web/member", "/org/taskfn/web/viewer"}, "/org/taskfn/",
			map[string]ProjectRole{"web": ProjectViewer}},
		{"group names without the full path do not count", []string{"member", "web"}, "/projects/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, GroupRoles(tt.groups, tt.prefix)); diff != "" {
				t.Errorf("GroupRoles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGroupRolesBounded(t *testing.T) {
	t.Parallel()
	groups := make([]string, 0, 2*maxGroupRoles)
	for i := range 2 * maxGroupRoles {
		groups = append(groups, fmt.Sprintf("/projects/p%d/member", i))
	}
	groups = append(groups, "/projects/p1/maintainer") // a project already held still strengthens
	got := GroupRoles(groups, "/projects/")
	if len(got) != maxGroupRoles {
		t.Errorf("%d project roles kept, want the cap %d", len(got), maxGroupRoles)
	}
	if got["p1"] != ProjectMaintainer {
		t.Errorf("p1 = %v, want maintainer", got["p1"])
	}
}

func TestParseProjectRole(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want ProjectRole
		ok   bool
	}{{"viewer", ProjectViewer, true}, {"member", ProjectMember, true}, {"maintainer", ProjectMaintainer, true},
		{"", NoProjectRole, false}, {"admin", NoProjectRole, false}, {"Viewer", NoProjectRole, false}} {
		got, ok := ParseProjectRole(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseProjectRole(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestValidProjectKey(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		"ab": true, "web-2026": true, "0ps": true, "abcdefghijklmnopqrstuvwxyz012345": true,
		"a": false, "": false, "abcdefghijklmnopqrstuvwxyz0123456": false, "Web": false, "a_b": false,
		"a b": false, "~alice": false, "wéb": false, "a/b": false,
	} {
		if got := ValidProjectKey(key); got != want {
			t.Errorf("ValidProjectKey(%q) = %v, want %v", key, got, want)
		}
	}
}
