package webhook_test

import (
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/webhook"
)

func access(sub string, role auth.Role, groups map[string]auth.ProjectRole) project.Access {
	return project.Partial(auth.Identity{Subject: sub, Roles: []auth.Role{role}, ProjectRoles: groups})
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	web := "web"
	var (
		admin      = access("adm", auth.RoleAdmin, nil)
		manager    = access("mgr", auth.RoleManager, nil)
		maintainer = access("m", auth.RoleMember, map[string]auth.ProjectRole{"web": auth.ProjectMaintainer, "ops": auth.ProjectViewer})
		member     = access("mem", auth.RoleMember, map[string]auth.ProjectRole{"web": auth.ProjectMember})
		other      = access("o", auth.RoleMember, nil)
	)
	for _, tt := range []struct {
		name    string
		a       project.Access
		key     *string
		manage  errs.Kind // 0: allowed
		touched []string
		receive bool
	}{
		{"admin, all projects", admin, nil, 0, []string{"anything"}, true},
		{"admin, a project", admin, &web, 0, []string{"web", "ops"}, true},
		{"manager, all projects", manager, nil, errs.Forbidden, []string{"web"}, false},
		{"manager, a project it does not maintain", manager, &web, errs.Forbidden, []string{"web"}, false},
		{"maintainer, its project", maintainer, &web, 0, []string{"web"}, true},
		{"maintainer, a relation to a project it views", maintainer, &web, 0, []string{"web", "ops"}, true},
		{"maintainer, a relation to a project it cannot see", maintainer, &web, 0, []string{"web", "hr"}, false},
		{"maintainer, another project's event", maintainer, &web, 0, []string{"ops"}, false},
		{"maintainer, all projects", maintainer, nil, errs.Forbidden, []string{"web"}, false},
		{"member", member, &web, errs.Forbidden, []string{"web"}, false},
		{"other", other, &web, errs.NotFound, []string{"web"}, false},
		{"personal project", other, ptr("~o"), 0, []string{"~o"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := errs.KindOf(webhook.CheckManage(tt.a, tt.key)); got != tt.manage {
				t.Errorf("CheckManage: kind %v, want %v", got, tt.manage)
			}
			if got := webhook.CanReceive(tt.a, tt.key, tt.touched); got != tt.receive {
				t.Errorf("CanReceive(%v): %v, want %v", tt.touched, got, tt.receive)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
