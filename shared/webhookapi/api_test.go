package webhookapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/webhook"
)

func ptr[T any](v T) *T { return &v }

// Who may make, see, change and delete which webhook: the permission
// matrix of docs/webhooks.md, through real HTTP.
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	e.project("web")
	rc := newReceiver(t, nil)
	url := rc.srv.URL + "/hook"
	create := func(c who, project *string) reply {
		return e.do(c, http.MethodPost, "/webhooks", map[string]any{"url": url, "types": []string{events.TaskCreated}, "project": project})
	}
	for _, tt := range []struct {
		name    string
		c       who
		project *string
		want    int
	}{
		{"maintainer, its project", maint, ptr("web"), http.StatusCreated},
		{"member, its project", member, ptr("web"), http.StatusForbidden},
		{"other, a project it cannot see", other, ptr("web"), http.StatusNotFound},
		{"admin, any project", admin, ptr("web"), http.StatusCreated},
		{"maintainer, every project", maint, nil, http.StatusForbidden},
		{"admin, every project", admin, nil, http.StatusCreated},
		{"maintainer, a project that does not exist", maint, ptr("nope"), http.StatusNotFound},
		{"maintainer, its personal project", maint, ptr("~maint"), http.StatusCreated},
	} {
		if got := create(tt.c, tt.project); got.status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, got.status, got.body, tt.want)
		}
	}

	mine := decode[webhook.Created](t, e.must(http.StatusCreated, maint, http.MethodPost, "/webhooks",
		map[string]any{"url": url, "types": []string{events.TaskCreated}, "project": "web"}))
	path := "/webhooks/" + mine.ID.String()
	for _, tt := range []struct {
		name         string
		c            who
		method, path string
		body         any
		want         int
	}{
		{"owner reads", maint, http.MethodGet, path, nil, http.StatusOK},
		{"admin reads", admin, http.MethodGet, path, nil, http.StatusOK},
		{"member reads", member, http.MethodGet, path, nil, http.StatusNotFound},
		{"other reads", other, http.MethodGet, path, nil, http.StatusNotFound},
		{"member lists deliveries", member, http.MethodGet, path + "/deliveries", nil, http.StatusNotFound},
		{"owner lists deliveries", maint, http.MethodGet, path + "/deliveries", nil, http.StatusOK},
		{"member patches", member, http.MethodPatch, path, map[string]any{"enabled": false}, http.StatusNotFound},
		{"other deletes", other, http.MethodDelete, path, nil, http.StatusNotFound},
		{"other redelivers", other, http.MethodPost, path + "/deliveries/" + mine.ID.String() + "/redeliver", nil, http.StatusNotFound},
		{"owner redelivers no such delivery", maint, http.MethodPost, path + "/deliveries/" + mine.ID.String() + "/redeliver", nil, http.StatusNotFound},
		{"admin patches", admin, http.MethodPatch, path, map[string]any{"content_mode": "binary"}, http.StatusOK},
		{"owner patches", maint, http.MethodPatch, path, map[string]any{"types": []string{events.TaskCreated, events.CommentCreated}}, http.StatusOK},
		{"not a uuid", maint, http.MethodGet, "/webhooks/x", nil, http.StatusNotFound},
	} {
		if got := e.do(tt.c, tt.method, tt.path, tt.body); got.status != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, got.status, got.body, tt.want)
		}
	}

	count := func(c who) int {
		return len(decode[struct{ Items []webhook.Webhook }](t, e.must(http.StatusOK, c, http.MethodGet, "/webhooks", nil)).Items)
	}
	if got := []int{count(maint), count(member), count(admin)}; !cmp.Equal(got, []int{3, 0, 5}) {
		t.Errorf("lists of maint, mem, admin: %v, want [3 0 5]", got)
	}

	// A maintainer demoted to member may still see and delete its
	// webhook, but no longer change it.
	e.must(http.StatusCreated, maint, http.MethodPut, "/projects/web/members/other", map[string]any{"role": "maintainer"})
	e.must(http.StatusOK, other, http.MethodPut, "/projects/web/members/maint", map[string]any{"role": "member"})
	eventually(t, "the demotion", func() bool {
		return e.do(maint, http.MethodPatch, path, map[string]any{"enabled": true}).status == http.StatusForbidden
	})
	e.must(http.StatusOK, maint, http.MethodGet, path, nil)
	e.must(http.StatusNoContent, maint, http.MethodDelete, path, nil)
	e.must(http.StatusNotFound, maint, http.MethodGet, path, nil)
}

// The secret is in the create answer only, and sealed in the table.
func TestSecretShownOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	rc := newReceiver(t, nil)
	created := e.hook(maint, ptr("~maint"), rc, nil)
	if !strings.HasPrefix(created.Secret, "whsec_") {
		t.Fatalf("secret %q", created.Secret)
	}
	for _, r := range []reply{
		e.must(http.StatusOK, maint, http.MethodGet, "/webhooks/"+created.ID.String(), nil),
		e.must(http.StatusOK, maint, http.MethodGet, "/webhooks", nil),
		e.must(http.StatusOK, maint, http.MethodPatch, "/webhooks/"+created.ID.String(), map[string]any{"enabled": true}),
	} {
		if strings.Contains(string(r.body), "secret") || strings.Contains(string(r.body), "whsec_") {
			t.Errorf("the secret shows again: %s", r.body)
		}
	}
	var stored []byte
	if err := e.db.Primary.QueryRow(context.Background(), `SELECT secret FROM webhooks WHERE id = $1`, created.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored), created.Secret) || strings.Contains(string(stored), strings.TrimPrefix(created.Secret, "whsec_")) {
		t.Error("the secret is stored in the clear")
	}
	// Only its key opens it.
	mineKey, _ := webhook.NewSealer(testKey)
	if got, err := mineKey.Open(created.ID, stored); err != nil || got.String() != created.Secret {
		t.Errorf("the test key opens %v, %v", got.Redacted(), err)
	}
	otherKey, err := webhook.NewSealer("b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI=")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := otherKey.Open(created.ID, stored); err == nil {
		t.Error("another key opens the secret")
	}
}

// URLs that would reach inside are refused at registration (422 naming
// url), at create and at patch; loopback http only with the setting.
// Names that resolve inside, over DNS: webhook's
// TestDraftRefusesNamesResolvingInside.
func TestSSRFRefusedAtRegistration(t *testing.T) {
	t.Parallel()
	strict := newEnv(t, testConfig(false))
	for _, url := range []string{
		"http://127.0.0.1:9/hook",        // plain http, and loopback
		"https://127.0.0.1/hook",         // loopback
		"https://[::1]/hook",             // loopback v6
		"https://169.254.169.254/latest", // cloud metadata
		"https://10.1.2.3/hook",          // private
		"https://192.168.0.1/hook",       // private
		"https://localhost/hook",         // names this host
		"https://[::ffff:10.0.0.1]/hook", // private, IPv4-mapped
		"https://user:pw@example.com/x",  // credentials
		"ftp://example.com/x",            // scheme
	} {
		t.Run(url, func(t *testing.T) {
			r := strict.do(maint, http.MethodPost, "/webhooks", map[string]any{"url": url, "types": []string{events.TaskCreated}, "project": "~maint"})
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"field":"url"`) {
				t.Errorf("%d %s, want 422 naming url", r.status, r.body)
			}
		})
	}
	loose := newEnv(t, testConfig(true))
	rc := newReceiver(t, nil)
	created := loose.hook(maint, ptr("~maint"), rc, nil)
	// The setting does not open private or metadata addresses.
	for _, url := range []string{"https://169.254.169.254/latest", "https://10.0.0.1/hook"} {
		r := loose.do(maint, http.MethodPatch, "/webhooks/"+created.ID.String(), map[string]any{"url": url})
		if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"field":"url"`) {
			t.Errorf("PATCH url %s: %d %s, want 422 naming url", url, r.status, r.body)
		}
	}
}

// Bodies: unknown fields 400, bad values 422 naming them.
func TestCreateValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	url := newReceiver(t, nil).srv.URL
	for _, tt := range []struct {
		name  string
		body  map[string]any
		want  int
		field string
	}{
		{"no url", map[string]any{"types": []string{events.TaskCreated}, "project": "~maint"}, 422, "url"},
		{"no types", map[string]any{"url": url, "project": "~maint"}, 422, "types"},
		{"empty types", map[string]any{"url": url, "types": []string{}, "project": "~maint"}, 422, "types"},
		{"report type", map[string]any{"url": url, "types": []string{events.ReportCompleted}, "project": "~maint"}, 422, "types"},
		{"bad mode", map[string]any{"url": url, "types": []string{events.TaskCreated}, "content_mode": "x", "project": "~maint"}, 422, "content_mode"},
		{"secret given", map[string]any{"url": url, "types": []string{events.TaskCreated}, "secret": "whsec_x", "project": "~maint"}, 422, "secret"},
		{"unknown field", map[string]any{"url": url, "types": []string{events.TaskCreated}, "colour": "red"}, 400, ""},
	} {
		r := e.do(maint, http.MethodPost, "/webhooks", tt.body)
		if r.status != tt.want || !strings.Contains(string(r.body), `"field":"`+tt.field+`"`) && tt.field != "" {
			t.Errorf("%s: %d %s, want %d naming %q", tt.name, r.status, r.body, tt.want, tt.field)
		}
	}
}

// PATCH honours If-Match against the ETag GET gives.
func TestPatchIfMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	created := e.hook(maint, ptr("~maint"), newReceiver(t, nil), nil)
	path := "/webhooks/" + created.ID.String()
	etag := e.must(http.StatusOK, maint, http.MethodGet, path, nil).header.Get("ETag")
	if etag != `"1"` {
		t.Fatalf("ETag %q", etag)
	}
	if r := e.doWith(maint, http.MethodPatch, path, map[string]any{"enabled": false}, "If-Match", etag); r.status != http.StatusOK || r.header.Get("ETag") != `"2"` {
		t.Fatalf("PATCH with the current ETag: %d %s", r.status, r.body)
	}
	if r := e.doWith(maint, http.MethodPatch, path, map[string]any{"enabled": true}, "If-Match", etag); r.status != http.StatusPreconditionFailed {
		t.Fatalf("PATCH with a stale ETag: %d %s", r.status, r.body)
	}
}
