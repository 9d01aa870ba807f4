package digest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/digest"
)

func TestPreferencesRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if got := e.do("ann", "GET", "/me/preferences", "").prefs(t); got != digest.Defaults {
		t.Fatalf("before any PUT: %+v, want the defaults", got)
	}
	r := e.do("ann", "PUT", "/me/preferences", `{"digest":"weekly","time_zone":"Europe/Berlin"}`)
	want := digest.Preferences{Digest: "weekly", TimeZone: "Europe/Berlin"}
	if r.status != 200 || !cmp.Equal(r.prefs(t), want) {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	if got := e.do("ann", "GET", "/me/preferences", "").prefs(t); got != want {
		t.Fatalf("GET after PUT: %+v", got)
	}
	// Someone else's are their own.
	if got := e.do("ben", "GET", "/me/preferences", "").prefs(t); got != digest.Defaults {
		t.Fatalf("ben sees %+v", got)
	}
	// The routes remember the caller: the digest's snapshot of its roles
	// and address.
	var email string
	var roles []string
	if err := e.svc.DB.Primary.QueryRow(t.Context(), `SELECT email, roles FROM people WHERE subject = 'ann'`).Scan(&email, &roles); err != nil {
		t.Fatal(err)
	}
	if email != "ann@example.com" || !cmp.Equal(roles, []string{string(auth.RoleMember)}) {
		t.Errorf("people has %q %v", email, roles)
	}

	for _, tc := range []struct {
		name, method, body, path string
		status                   int
	}{
		{"bad zone", "PUT", `{"digest":"weekly","time_zone":"Europe/Nowhere"}`, "/me/preferences", 422},
		{"bad digest", "PUT", `{"digest":"monthly"}`, "/me/preferences", 422},
		{"unknown member", "PUT", `{"digest":"off","x":1}`, "/me/preferences", 400},
		{"query on GET", "GET", "", "/me/preferences?x=1", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.do("ann", tc.method, tc.path, tc.body); r.status != tc.status {
				t.Errorf("%d %s, want %d", r.status, r.body, tc.status)
			}
		})
	}
	// Refusals changed nothing.
	if got := e.do("ann", "GET", "/me/preferences", "").prefs(t); got != want {
		t.Fatalf("after refusals: %+v", got)
	}
	r = e.do("ann", "PUT", "/me/preferences", `{"digest":"off"}`)
	if got := r.prefs(t); got != (digest.Preferences{Digest: "off", TimeZone: "UTC"}) {
		t.Fatalf("off: %+v", got)
	}
	var next *string
	if err := e.svc.DB.Primary.QueryRow(t.Context(), `SELECT next_digest_at::text FROM digest_preferences WHERE subject = 'ann'`).Scan(&next); err != nil || next != nil {
		t.Fatalf("off leaves next_digest_at %v (%v)", next, err)
	}
}
