package notify_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
)

// inboxEnv is the inbox routes of a sinkEnv.
type inboxEnv struct {
	db     *pg.DB
	store  *notify.Store
	issuer *authtest.Issuer
	url    string
}

func newInboxEnv(t *testing.T) *inboxEnv {
	t.Helper()
	return newSinkEnv(t).inbox()
}

// inbox is the inbox of the sink's service.
func (s *sinkEnv) inbox() *inboxEnv {
	return &inboxEnv{db: s.db, store: s.store, issuer: s.issuer, url: s.url}
}

// notifyStatus records a status change of a task owned by owner and
// assigned to assignee, made by actor, as the sink would.
func (env *inboxEnv) notifyStatus(t *testing.T, actor, owner string, assignee *string) {
	t.Helper()
	ev := statusChanged(t, actor, owner, assignee)
	notices, err := notify.Decide(ev.Type(), ev.DataContentType(), ev.Data())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Record(context.Background(), ev.ID(), notices, ""); err != nil {
		t.Fatal(err)
	}
}

func (env *inboxEnv) call(t *testing.T, method, path, token string) (int, string) {
	t.Helper()
	resp, b := httpxtest.Call(t, nil, method, env.url+path, token, "")
	return resp.StatusCode, string(b)
}

type page struct {
	Items       []notify.Notification `json:"items"`
	NextCursor  *string               `json:"next_cursor"`
	UnreadCount int64                 `json:"unread_count"`
}

func decodePage(t *testing.T, body string) page {
	t.Helper()
	var p page
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return p
}

func TestInboxAPI(t *testing.T) {
	t.Parallel()
	env := newInboxEnv(t)
	for range 3 {
		env.notifyStatus(t, "carol", "alice", ptr("bob")) // alice and bob
	}
	env.notifyStatus(t, "alice", "dave", nil) // dave only
	alice := env.issuer.Token(t, "alice", auth.RoleMember)
	bob := env.issuer.Token(t, "bob", auth.RoleMember)
	noRole := env.issuer.Token(t, "eve")

	// alice's newest notification, for the read tests.
	status, body := env.call(t, "GET", "/notifications", alice)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	first := decodePage(t, body)
	if len(first.Items) != 3 || first.UnreadCount != 3 || first.NextCursor != nil {
		t.Fatalf("alice's inbox: %+v", first)
	}
	aliceNewest := first.Items[0].ID

	tests := []struct {
		name   string
		method string
		path   string
		token  string
		want   int
		check  func(t *testing.T, body string)
	}{
		{name: "no token", method: "GET", path: "/notifications", want: 401},
		{name: "no task role", method: "GET", path: "/notifications", token: noRole, want: 403},
		{name: "bob sees only his own", method: "GET", path: "/notifications", token: bob, want: 200, check: func(t *testing.T, body string) {
			p := decodePage(t, body)
			if len(p.Items) != 3 {
				t.Errorf("%d items", len(p.Items))
			}
			for _, n := range p.Items {
				if n.Kind != notify.KindStatusChanged || n.Summary != "carol moved “Fix the login page” from in progress to done" {
					t.Errorf("notification %+v", n)
				}
			}
		}},
		{name: "newest first, in pages", method: "GET", path: "/notifications?limit=2", token: alice, want: 200, check: func(t *testing.T, body string) {
			p := decodePage(t, body)
			if len(p.Items) != 2 || p.NextCursor == nil || p.Items[0].ID != aliceNewest || !p.Items[0].CreatedAt.After(p.Items[1].CreatedAt.Add(-1)) {
				t.Fatalf("page 1: %+v", p)
			}
			status, body := env.call(t, "GET", "/notifications?limit=2&cursor="+*p.NextCursor, alice)
			p2 := decodePage(t, body)
			if status != 200 || len(p2.Items) != 1 || p2.NextCursor != nil || p2.Items[0].ID == p.Items[1].ID {
				t.Errorf("page 2: %d %+v", status, p2)
			}
		}},
		{name: "someone else's notification is not found", method: "POST", path: "/notifications/" + aliceNewest.String() + "/read", token: bob, want: 404},
		{name: "malformed id", method: "POST", path: "/notifications/nope/read", token: alice, want: 404},
		{name: "unknown id", method: "POST", path: "/notifications/" + uuid.NewString() + "/read", token: alice, want: 404},
		{name: "limit out of range", method: "GET", path: "/notifications?limit=0", token: alice, want: 400},
		{name: "unknown parameter", method: "GET", path: "/notifications?status=new", token: alice, want: 400},
		{name: "bad cursor", method: "GET", path: "/notifications?cursor=xyz", token: alice, want: 400},
		{name: "bad unread", method: "GET", path: "/notifications?unread=yes", token: alice, want: 400},
		{name: "semicolon separator", method: "GET", path: "/notifications?unread=true;limit=1", token: alice, want: 400},
		{name: "bad escape", method: "GET", path: "/notifications?unread=%zz", token: alice, want: 400},
		{name: "wrong method", method: "DELETE", path: "/notifications", token: alice, want: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, body := env.call(t, tc.method, tc.path, tc.token)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if status >= 400 && !strings.Contains(body, `"type":"https://taskfn.dev/problems/`) {
				t.Errorf("not a problem: %s", body)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// Reading is idempotent, keeps the first read time, and drives the unread
// filter and count.
func TestInboxRead(t *testing.T) {
	t.Parallel()
	env := newInboxEnv(t)
	env.notifyStatus(t, "carol", "alice", nil)
	env.notifyStatus(t, "carol", "alice", nil)
	alice := env.issuer.Token(t, "alice", auth.RoleMember)

	_, body := env.call(t, "GET", "/notifications", alice)
	target := decodePage(t, body).Items[1]
	var read []notify.Notification
	for range 2 {
		status, body := env.call(t, "POST", "/notifications/"+target.ID.String()+"/read", alice)
		if status != 200 {
			t.Fatalf("%d %s", status, body)
		}
		var n notify.Notification
		if err := json.Unmarshal([]byte(body), &n); err != nil {
			t.Fatal(err)
		}
		read = append(read, n)
	}
	if read[0].ReadAt == nil || !read[0].ReadAt.Equal(*read[1].ReadAt) {
		t.Errorf("read_at %v then %v: want one time, kept", read[0].ReadAt, read[1].ReadAt)
	}
	_, body = env.call(t, "GET", "/notifications?unread=true", alice)
	p := decodePage(t, body)
	if len(p.Items) != 1 || p.Items[0].ID == target.ID || p.UnreadCount != 1 {
		t.Errorf("unread page %+v", p)
	}
}

// Calling an inbox route puts the caller's verified address into the
// directory, so later events can email them; an unverified one is not.
func TestInboxRemembersCaller(t *testing.T) {
	t.Parallel()
	env := newInboxEnv(t)
	for _, u := range []struct {
		subject  string
		verified bool
	}{{"alice", true}, {"mallory", false}} {
		claims := env.issuer.Claims(u.subject, auth.RoleMember)
		claims["email"], claims["email_verified"] = u.subject+"@taskfn.test", u.verified
		if status, body := env.call(t, "GET", "/notifications", env.issuer.Sign(t, claims)); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	got, err := people.Lookup(context.Background(), env.db.Primary, []string{"alice", "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	if got["alice"].Email != "alice@taskfn.test" || got["mallory"].Subject != "mallory" || got["mallory"].Email != "" {
		t.Errorf("directory %+v", got)
	}
}
