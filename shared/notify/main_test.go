package notify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/notify/smtptest"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// One broker for the test binary, for the end-to-end tests (e2e_test.go).
func TestMain(m *testing.M) { kafkatest.Main(m, pgtest.Main) }

func ptr[T any](v T) *T { return &v }

// sinkEnv is the notify functions wired as they run (notify.Open) on a
// fresh database, with a real SMTP server behind them and a Keycloak-shaped
// issuer: the sink and the inbox routes served over real HTTP.
type sinkEnv struct {
	issuer *authtest.Issuer
	db     *pg.DB
	store  *notify.Store
	smtp   *smtptest.Server
	sender *notify.Sender // of the sink's SMTP configuration, for tests that send themselves
	url    string
}

func newSinkEnv(t testing.TB) *sinkEnv {
	t.Helper()
	return newSinkEnvWith(t, nil)
}

// newSinkEnvWith is newSinkEnv with change, if not nil, made to the
// configuration first.
func newSinkEnvWith(t testing.TB, change func(*notify.Config)) *sinkEnv {
	t.Helper()
	srv := smtptest.Start(t)
	iss := authtest.NewIssuer(t)
	cfg := notify.Config{
		Config: function.Config{Log: logging.Config{Level: "error"}, DB: pgtest.NewConfig(t)},
		Auth:   iss.Config(),
		SMTP: notify.SMTPConfig{
			Addr: srv.Addr, From: "taskfn <noreply@taskfn.test>", TLS: "none", Timeout: 5 * time.Second, ClaimLease: 10 * time.Second, HeloName: "localhost",
		},
	}
	if change != nil {
		change(&cfg)
	}
	svc, err := notify.Open(t.Context(), "notify-test", cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	sender, err := notify.NewSender(cfg.SMTP)
	if err != nil {
		t.Fatal(err)
	}
	// One handler, as the dev runner mounts them: the sink at /, the
	// inbox routes beside it.
	h := svc.Handler(append(slices.Clone(svc.Routes), svc.Sink.Route())...)
	return &sinkEnv{issuer: iss, db: svc.DB, store: svc.Store, smtp: srv, sender: sender, url: httpxtest.Serve(t, h).URL}
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
