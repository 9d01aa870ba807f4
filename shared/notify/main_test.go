package notify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/notify/smtptest"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func ptr[T any](v T) *T { return &v }

// sinkEnv is notify's sink served over real HTTP on a fresh database, with
// a real SMTP server behind it.
type sinkEnv struct {
	db     *pg.DB
	store  *notify.Store
	smtp   *smtptest.Server
	sender *notify.Sender
	url    string
}

func newSinkEnv(t testing.TB) *sinkEnv {
	t.Helper()
	return newSinkEnvOn(t, pgtest.New(t), 5*time.Second)
}

// newSinkEnvOn is newSinkEnv on a database the test opened itself, with
// smtpTimeout as SMTP_TIMEOUT.
func newSinkEnvOn(t testing.TB, db *pg.DB, smtpTimeout time.Duration) *sinkEnv {
	t.Helper()
	store, err := notify.NewStore(db)
	if err != nil {
		t.Fatal(err)
	}
	srv := smtptest.Start(t)
	sender, err := notify.NewSender(notify.SMTPConfig{
		Addr: srv.Addr, From: "taskfn <noreply@taskfn.test>", TLS: "none", Timeout: smtpTimeout, ClaimLease: 2 * smtpTimeout, HeloName: "localhost",
	})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := notify.NewSink(store, sender)
	if err != nil {
		t.Fatal(err)
	}
	return &sinkEnv{db: db, store: store, smtp: srv, sender: sender, url: serve(t, sink.Route())}
}

// serve mounts routes on the functions' router behind a real listener.
func serve(t testing.TB, routes ...httpx.Route) string {
	t.Helper()
	ready := func(context.Context) error { return nil }
	h := httpx.NewRouter(zerolog.Nop(), prometheus.NewRegistry(), ready, routes...)
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

// remember puts a person into the directory, as an HTTP function does for
// its callers.
func remember(t testing.TB, db *pg.DB, subject, email string) {
	t.Helper()
	if err := people.Remember(context.Background(), db.Primary, auth.Identity{Subject: subject, Username: subject, Email: email}); err != nil {
		t.Fatal(err)
	}
}

func snapshot(owner string, assignee *string, status string) events.TaskSnapshot {
	now := time.Now().UTC().Truncate(time.Microsecond)
	return events.TaskSnapshot{
		ID: uuid.Must(uuid.NewV7()), Title: "Fix the login page", Status: status, Priority: "high",
		OwnerID: owner, AssigneeID: assignee, Labels: []string{}, CreatedAt: now, UpdatedAt: now, Version: 2,
	}
}

// cloudEvent builds the event the outbox would publish for data.
func cloudEvent(t testing.TB, entity uuid.UUID, data events.Data) event.Event {
	t.Helper()
	ev, err := events.NewTaskEvent(events.DefaultTasksTopic, entity, data)
	if err != nil {
		t.Fatal(err)
	}
	ce, err := ev.CloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	return ce
}

func statusChanged(t testing.TB, actor, owner string, assignee *string) event.Event {
	t.Helper()
	snap := snapshot(owner, assignee, "done")
	return cloudEvent(t, snap.ID, events.TaskStatusChangedData{Actor: actor, OldStatus: "in_progress", NewStatus: "done", Task: snap})
}

// post delivers ev in binary mode, as KafkaSource does, and returns the
// status and body.
func post(t testing.TB, url string, ev event.Event) (int, string) {
	t.Helper()
	req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), url+"/", ev)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func postRaw(t testing.TB, url string, header http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	return do(t, req)
}

func do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// inbox counts the notifications of each recipient, and the emails.
func counts(t testing.TB, db *pg.DB) (notifications map[string]int, emailsQueued int) {
	t.Helper()
	ctx := context.Background()
	rows, err := db.Primary.Query(ctx, "SELECT recipient, count(*) FROM notifications GROUP BY recipient")
	if err != nil {
		t.Fatal(err)
	}
	notifications = map[string]int{}
	for rows.Next() {
		var r string
		var n int
		if err := rows.Scan(&r, &n); err != nil {
			t.Fatal(err)
		}
		notifications[r] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if err := db.Primary.QueryRow(ctx, "SELECT count(*) FROM email_outbox").Scan(&emailsQueued); err != nil {
		t.Fatal(err)
	}
	return notifications, emailsQueued
}
