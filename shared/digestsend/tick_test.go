package digestsend_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/digestsend"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/notify/smtptest"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
)

// Monday 7 Dec 2026, 09:00 UTC: past 07:00 in Berlin (06:00Z) and in UTC.
func TestMain(m *testing.M) { pgtest.Main(m) }

var monday = utc("2026-12-07T09:00:00Z")

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

type tickEnv struct {
	t     testing.TB
	db    *pg.DB
	store *digest.Store
	tasks *task.Store
	roles *project.Resolver
}

func newTickEnv(t *testing.T) *tickEnv { return newTickEnvB(t) }

func newTickEnvB(t testing.TB) *tickEnv {
	t.Helper()
	db := pgtest.New(t)
	store, err := digest.NewStore(db, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := task.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	roles, err := project.OpenResolver(db, project.ResolverConfig{RolesTTL: 100 * time.Millisecond, RolesCacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	e := &tickEnv{t: t, db: db, store: store, tasks: tasks, roles: roles}
	e.exec(`INSERT INTO projects (key, name, created_by) VALUES ('web', 'Web', 'x'), ('secret', 'Secret', 'x')`)
	return e
}

func (e *tickEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Primary.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// user remembers subject as a task-member with an address and the given
// Keycloak group roles, and sets its preferences (digest "" sets none).
func (e *tickEnv) user(subject, dg, tz string, groups map[string]auth.ProjectRole) {
	e.t.Helper()
	id := auth.Identity{Subject: subject, Username: subject, Email: subject + "@example.com", Roles: []auth.Role{auth.RoleMember}, ProjectRoles: groups}
	if err := people.Remember(context.Background(), e.db.Primary, id); err != nil {
		e.t.Fatal(err)
	}
	if dg != "" {
		if err := e.store.Put(context.Background(), subject, digest.Preferences{Digest: dg, TimeZone: tz}, monday.Add(-72*time.Hour)); err != nil {
			e.t.Fatal(err)
		}
	}
}

// seed stores a task; completed marks it done at that time.
func (e *tickEnv) seed(title, projectKey, owner string, assignee *string, due, completed *time.Time) {
	e.t.Helper()
	status := "todo"
	var key *string // nil: the owner's personal project, made by a trigger
	if !strings.HasPrefix(projectKey, project.PersonalPrefix) {
		key = &projectKey
	}
	if completed != nil {
		status = "done"
	}
	e.exec(`
INSERT INTO tasks (id, title, status, priority, owner_id, assignee_id, project, due_at, completed_at, created_at, updated_at)
VALUES (gen_random_uuid(), $1, $2, 'low', $3, $4, $5, $6, $7, $8, $8)`,
		title, status, owner, assignee, key, due, completed, monday.Add(-14*24*time.Hour))
}

func (e *tickEnv) tick(now time.Time, batch int) *digestsend.Tick {
	e.t.Helper()
	h, err := digestsend.NewTick(e.store, e.tasks, e.roles, e.db, digestsend.TickConfig{BatchSize: batch, Budget: time.Minute, Lease: time.Minute})
	if err != nil {
		e.t.Fatal(err)
	}
	digestsend.SetNow(h, func() time.Time { return now })
	return h
}

// outboxDigests returns the digest events in the outbox, by subject.
func (e *tickEnv) outboxDigests() map[string][]events.Event {
	e.t.Helper()
	rows, err := e.db.Primary.Query(context.Background(), `
SELECT event_id, topic, key, type, source, subject, created_at, data
FROM outbox
WHERE type = $1
ORDER BY id`, events.DigestWeekly)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]events.Event{}
	for rows.Next() {
		var ev events.Event
		if err := rows.Scan(&ev.ID, &ev.Topic, &ev.Key, &ev.Type, &ev.Source, &ev.Subject, &ev.Time, &ev.Data); err != nil {
			e.t.Fatal(err)
		}
		var d events.DigestWeeklyData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			e.t.Fatal(err)
		}
		out[d.Subject] = append(out[d.Subject], ev)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func dataOf(t *testing.T, ev events.Event) events.DigestWeeklyData {
	t.Helper()
	var d events.DigestWeeklyData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// Four ticks at once, on four "pods", over many users in small batches:
// each opted-in user gets one digest of the week, the others none, and
// ticks after them send nothing more.
func TestTickExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	const n = 24
	var want []string
	for i := range n {
		s := fmt.Sprintf("u%02d", i)
		switch i % 4 {
		case 0:
			e.user(s, "off", "UTC", nil)
		case 1:
			e.user(s, "", "", nil) // never set preferences
		default:
			e.user(s, "weekly", []string{"Europe/Berlin", "UTC"}[i%2], nil)
			want = append(want, s)
		}
		e.seed("task of "+s, project.PersonalKey(s), s, nil, nil, nil)
	}
	var wg sync.WaitGroup
	results := make([]digestsend.Result, 4)
	for i := range 4 {
		h := e.tick(monday, 2)
		wg.Go(func() {
			res, err := h.Run(context.Background())
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	got := e.outboxDigests()
	var subjects []string
	sent := 0
	for s, evs := range got {
		subjects = append(subjects, s)
		if len(evs) != 1 {
			t.Errorf("%s: %d digest events, want 1", s, len(evs))
		}
		if d := dataOf(t, evs[0]); d.Week != "2026-W50" || d.Open != 1 || !d.Chart {
			t.Errorf("%s: digest %+v", s, d)
		}
	}
	for _, r := range results {
		sent += r.Sent
	}
	slices.Sort(subjects)
	if !cmp.Equal(subjects, want) || sent != len(want) {
		t.Fatalf("digests for %v (ticks report %d sent), want %v", subjects, sent, want)
	}
	var rows int
	if err := e.db.Primary.QueryRow(context.Background(), `SELECT count(*) FROM digests`).Scan(&rows); err != nil || rows != len(want) {
		t.Fatalf("%d digests rows (%v), want %d", rows, err, len(want))
	}

	// Later ticks this week send nothing; next Monday, everyone again.
	for _, now := range []time.Time{monday.Add(time.Hour), monday.Add(5 * 24 * time.Hour)} {
		if res, err := e.tick(now, 5).Run(context.Background()); err != nil || res.Sent != 0 {
			t.Fatalf("tick at %s: %+v %v", now, res, err)
		}
	}
	if res, err := e.tick(monday.Add(7*24*time.Hour), 5).Run(context.Background()); err != nil || res.Sent != len(want) {
		t.Fatalf("next Monday: %+v %v, want %d sent", res, err, len(want))
	}
	// Two weeks on, the first week's rows are purged by a tick, the
	// second week's kept.
	if res, err := e.tick(monday.Add(15*24*time.Hour), 5).Run(context.Background()); err != nil || res.Purged != int64(len(want)) {
		t.Fatalf("a tick 15 days on: %+v %v, want the first week's %d purged", res, err, len(want))
	}
}

// Before 07:00 local nothing goes out; a user in Auckland, whose Monday
// began on Sunday UTC, gets it then.
func TestTickDueByZone(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	for s, tz := range map[string]string{"berlin": "Europe/Berlin", "auckland": "Pacific/Auckland", "la": "America/Los_Angeles"} {
		e.user(s, "weekly", tz, nil)
		// Last week's went out: the one due next is this week's.
		e.exec(`UPDATE digest_preferences SET last_week = '2026-W49', next_digest_at = $2 WHERE subject = $1`,
			s, digest.FirstDue(utc("2026-12-06T00:00:00Z"), zone(t, tz), "2026-W49"))
	}
	for _, step := range []struct {
		now  string
		sent []string
	}{
		{"2026-12-06T17:59:00Z", nil},                  // Monday 06:59 in Auckland
		{"2026-12-06T18:00:00Z", []string{"auckland"}}, // Monday 07:00 there
		{"2026-12-07T05:59:00Z", []string{"auckland"}},
		{"2026-12-07T06:00:00Z", []string{"auckland", "berlin"}},
		{"2026-12-07T15:00:00Z", []string{"auckland", "berlin", "la"}},
	} {
		if _, err := e.tick(utc(step.now), 10).Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		var got []string
		for s := range e.outboxDigests() {
			got = append(got, s)
		}
		slices.Sort(got)
		if !cmp.Equal(got, step.sent) {
			t.Fatalf("at %s: digests for %v, want %v", step.now, got, step.sent)
		}
	}
}

// A digest lists only what its user may see now: tasks of projects it
// holds a role in (by token group or by the members table), or assigned
// to it; never a task of a project it cannot see, even one it owns.
func TestTickVisibility(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	e.user("viv", "weekly", "UTC", map[string]auth.ProjectRole{"web": auth.ProjectViewer})
	e.user("other", "", "", nil)
	lastWeek := monday.Add(-3 * 24 * time.Hour)
	past, soon := monday.Add(-time.Hour), monday.Add(48*time.Hour)
	viv := "viv"
	e.seed("mine, overdue", "web", "viv", nil, &past, nil)
	e.seed("assigned to me elsewhere", "secret", "other", &viv, &soon, nil)
	e.seed("mine in secret", "secret", "viv", nil, nil, nil) // owned, but no role in secret any more
	e.seed("someone's, web", "web", "other", nil, nil, nil)  // not mine: not listed
	e.seed("done in web", "web", "other", nil, nil, &lastWeek)
	e.seed("done in secret", "secret", "other", nil, nil, &lastWeek)
	e.seed("done in web, two weeks ago", "web", "other", nil, nil, ptr(monday.Add(-10*24*time.Hour)))

	if _, err := e.tick(monday, 5).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := e.outboxDigests()["viv"]
	if len(evs) != 1 {
		t.Fatalf("%d digests", len(evs))
	}
	d := dataOf(t, evs[0])
	var titles []string
	for _, tk := range d.OpenTasks {
		titles = append(titles, tk.Title)
	}
	if want := []string{"mine, overdue", "assigned to me elsewhere"}; !cmp.Equal(titles, want) || d.Open != 2 || d.Overdue != 1 {
		t.Errorf("open %v (%d, %d overdue), want %v", titles, d.Open, d.Overdue, want)
	}
	if want := []events.DigestProject{{Project: "web", Count: 1, Titles: []string{"done in web"}}}; d.Completed != 1 || !cmp.Equal(d.Projects, want) {
		t.Errorf("completed %d %+v, want %+v", d.Completed, d.Projects, want)
	}
	if !d.From.Equal(utc("2026-11-30T00:00:00Z")) || !d.To.Equal(utc("2026-12-07T00:00:00Z")) {
		t.Errorf("last week %s..%s", d.From, d.To)
	}

	// Made a member of secret through the API: the next digest counts it.
	e.exec(`INSERT INTO project_members (project, subject, role, added_by) VALUES ('secret', 'viv', 'viewer', 'x')`)
	if _, err := e.tick(monday.Add(7*24*time.Hour), 5).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs = e.outboxDigests()["viv"]
	if d := dataOf(t, evs[len(evs)-1]); d.Open != 3 {
		t.Errorf("with secret: %d open, want 3", d.Open)
	}
}

// notify turns the digest event into one inbox entry and one email whose
// chart is an inline PNG part, however often the event comes.
func TestDigestEmail(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	e.user("mia", "weekly", "Europe/Berlin", map[string]auth.ProjectRole{"web": auth.ProjectMember})
	past := monday.Add(-time.Hour)
	e.seed("Ship the release", "web", "mia", nil, &past, nil)
	if _, err := e.tick(monday, 5).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := e.outboxDigests()["mia"][0]

	srv := smtptest.Start(t)
	sender, err := notify.NewSender(notify.SMTPConfig{Addr: srv.Addr, From: "taskfn <noreply@taskfn.test>", TLS: "none",
		Timeout: 5 * time.Second, ClaimLease: 10 * time.Second, HeloName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := notify.NewStore(e.db)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := notify.NewSink(ns, sender)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := ev.CloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 { // redelivered, at once
		wg.Go(func() {
			if err := sink.Handle(context.Background(), ce); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	page, err := ns.List(context.Background(), notify.ListQuery{Recipient: "mia", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Kind != notify.KindDigest ||
		page.Items[0].Summary != "Your weekly digest (2026-W50): 1 open tasks, 1 overdue; 0 completed last week in your projects" {
		t.Fatalf("inbox %+v", page.Items)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want 1", len(msgs))
	}
	text, png := parseRelated(t, msgs[0].Raw)
	if !strings.Contains(text, "[overdue] “Ship the release” (web, todo, due Mon 7 Dec 09:00 CET)") {
		t.Errorf("text:\n%s", text)
	}
	if !strings.HasPrefix(string(png), "\x89PNG\r\n\x1a\n") {
		t.Errorf("the inline part is not a PNG (%d bytes)", len(png))
	}
	// Sent, the email keeps no copy of the chart.
	var kept *int
	if err := e.db.Primary.QueryRow(context.Background(), `SELECT length(inline_png) FROM email_outbox WHERE sent_at IS NOT NULL`).Scan(&kept); err != nil || kept != nil {
		t.Errorf("the sent email keeps %v bytes of chart (%v)", kept, err)
	}
}

// parseRelated returns the plain text and the inline image (by its
// Content-ID, which the HTML refers to) of a multipart/related message.
func parseRelated(t *testing.T, raw []byte) (string, []byte) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" {
		t.Fatalf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	var text, html string
	var png []byte
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, pp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch pt {
		case "multipart/alternative":
			ar := multipart.NewReader(p, pp["boundary"])
			for {
				ap, err := ar.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(ap) // quoted-printable is decoded by the reader
				if strings.HasPrefix(ap.Header.Get("Content-Type"), "text/html") {
					html = string(b)
				} else {
					text = string(b)
				}
			}
		case "image/png":
			if p.Header.Get("Content-ID") != "<chart@taskfn>" || !strings.HasPrefix(p.Header.Get("Content-Disposition"), "inline") {
				t.Errorf("image part headers %v", p.Header)
			}
			b, _ := io.ReadAll(p)
			if png, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", "")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.Contains(html, `src="cid:chart@taskfn"`) {
		t.Errorf("the HTML does not show the image: %s", html)
	}
	return text, png
}

func ptr[T any](v T) *T { return &v }

// Putting preferences again never brings back a week already sent, a
// zone change reschedules by the new zone, and the same settings again
// write nothing.
func TestPutReschedules(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	ctx := context.Background()
	state := func() (next time.Time, updated time.Time) {
		t.Helper()
		if err := e.db.Primary.QueryRow(ctx, `SELECT next_digest_at, updated_at FROM digest_preferences WHERE subject = 'pat'`).Scan(&next, &updated); err != nil {
			t.Fatal(err)
		}
		return next, updated
	}
	put := func(tz string, at time.Time) {
		t.Helper()
		if err := e.store.Put(ctx, "pat", digest.Preferences{Digest: "weekly", TimeZone: tz}, at); err != nil {
			t.Fatal(err)
		}
	}
	e.user("pat", "", "", nil)
	put("UTC", monday)
	if next, _ := state(); !next.Equal(utc("2026-12-07T07:00:00Z")) {
		t.Fatalf("opted in on Monday 09:00: next %s, want this Monday 07:00", next)
	}
	if res, err := e.tick(monday, 5).Run(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	_, before := state()
	put("UTC", monday.Add(time.Hour))
	next, after := state()
	if !next.Equal(utc("2026-12-14T07:00:00Z")) || !after.Equal(before) {
		t.Fatalf("the same again: next %s, updated %s → %s; want next Monday and no write", next, before, after)
	}
	put("Pacific/Auckland", monday.Add(time.Hour)) // Monday 23:00 there: W50, sent
	if next, _ := state(); !next.Equal(utc("2026-12-13T18:00:00Z")) {
		t.Fatalf("moved to Auckland: next %s, want its next Monday 07:00", next)
	}
	if res, err := e.tick(monday.Add(2*time.Hour), 5).Run(ctx); err != nil || res.Sent != 0 {
		t.Fatalf("after the move: %+v %v, want nothing sent", res, err)
	}
}

// A digest made for another week than the one due when it is filed (the
// zone changed after the claim) is not filed, and the due week stays due.
func TestRecordOtherWeek(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	ctx := context.Background()
	e.user("kim", "weekly", "UTC", nil)
	filed, err := e.store.Record(ctx, monday, events.DigestWeeklyData{DigestID: uuid.New(), Subject: "kim", Week: "2026-W49"}, nil)
	if err != nil || filed {
		t.Fatalf("filed %v (%v), want not", filed, err)
	}
	var next time.Time
	if err := e.db.Primary.QueryRow(ctx, `SELECT next_digest_at FROM digest_preferences WHERE subject = 'kim'`).Scan(&next); err != nil || next.After(monday) {
		t.Fatalf("next %s (%v), want still due", next, err)
	}
	if res, err := e.tick(monday, 5).Run(ctx); err != nil || res.Sent != 1 {
		t.Fatalf("the next tick: %+v %v, want this week's sent", res, err)
	}
}
