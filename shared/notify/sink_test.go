package notify_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/pg"
)

// The same event delivered again and again, one after the other or at
// once, makes one notification per recipient and one email each.
func TestSinkIsIdempotent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		actor      string
		assignee   *string
		known      []string // subjects with an email in the directory
		deliveries int
		parallel   bool
		wantInbox  map[string]int
		wantEmails []string
	}{
		{
			name: "three deliveries", actor: "carol", assignee: ptr("bob"), known: []string{"alice", "bob"},
			deliveries: 3, wantInbox: map[string]int{"alice": 1, "bob": 1},
			wantEmails: []string{"alice@taskfn.test", "bob@taskfn.test"},
		},
		{
			name: "five at once", actor: "carol", assignee: ptr("bob"), known: []string{"alice", "bob"},
			deliveries: 5, parallel: true, wantInbox: map[string]int{"alice": 1, "bob": 1},
			wantEmails: []string{"alice@taskfn.test", "bob@taskfn.test"},
		},
		{
			name: "the actor is not told", actor: "alice", assignee: ptr("bob"), known: []string{"alice", "bob"},
			deliveries: 3, wantInbox: map[string]int{"bob": 1}, wantEmails: []string{"bob@taskfn.test"},
		},
		{
			name: "no known address: inbox only", actor: "carol", assignee: ptr("bob"), known: []string{"alice"},
			deliveries: 3, wantInbox: map[string]int{"alice": 1, "bob": 1}, wantEmails: []string{"alice@taskfn.test"},
		},
		{
			name: "owner acting on an unassigned task: nobody", actor: "alice", known: []string{"alice"},
			deliveries: 2, wantInbox: map[string]int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newSinkEnv(t)
			for _, s := range tc.known {
				remember(t, env.db, s, s+"@taskfn.test")
			}
			ev := statusChanged(t, tc.actor, "alice", tc.assignee)
			var wg sync.WaitGroup
			statuses := make([]int, tc.deliveries)
			for i := range tc.deliveries {
				deliver := func() { statuses[i], _ = post(t, env.url, ev) }
				if tc.parallel {
					wg.Go(deliver)
				} else {
					deliver()
				}
			}
			wg.Wait()
			for i, s := range statuses {
				if s != http.StatusNoContent {
					t.Errorf("delivery %d: status %d, want 204", i, s)
				}
			}
			inbox, queued := counts(t, env.db)
			if d := cmp.Diff(tc.wantInbox, inbox); d != "" {
				t.Errorf("notifications per recipient (-want +got):\n%s", d)
			}
			var got []string
			for _, m := range env.smtp.Messages() {
				got = append(got, m.To...)
			}
			if d := cmp.Diff(tc.wantEmails, got, cmpSorted); d != "" {
				t.Errorf("emails (-want +got):\n%s", d)
			}
			if queued != len(tc.wantEmails) {
				t.Errorf("%d emails queued, want %d", queued, len(tc.wantEmails))
			}
		})
	}
}

var cmpSorted = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// A redelivery after the event's processed-event record was purged (the
// cleanup keeps those records only for the redelivery window) still makes
// no second notification and no second email: the inbox's own key, one
// notification per recipient and event, refuses it.
func TestSinkRedeliveryAfterPurge(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	ctx := context.Background()
	remember(t, env.db, "alice", "alice@taskfn.test")
	remember(t, env.db, "bob", "bob@taskfn.test")
	ev := statusChanged(t, "carol", "alice", ptr("bob"))
	processed := func() int {
		t.Helper()
		var n int
		if err := env.db.Primary.QueryRow(ctx, "SELECT count(*) FROM processed_events WHERE event_id = $1", ev.ID()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if status, body := post(t, env.url, ev); status != http.StatusNoContent {
		t.Fatalf("first delivery: %d %s", status, body)
	}
	if n, err := env.store.PurgeProcessed(ctx, time.Now().Add(time.Hour), 100); err != nil || n != 1 || processed() != 0 {
		t.Fatalf("purge: %d, %v; %d records left", n, err, processed())
	}
	for i := range 2 {
		if status, body := post(t, env.url, ev); status != http.StatusNoContent {
			t.Fatalf("redelivery %d: %d %s", i, status, body)
		}
	}
	if processed() != 1 {
		t.Errorf("%d processed-event records after the redeliveries, want 1", processed())
	}
	inbox, queued := counts(t, env.db)
	if d := cmp.Diff(map[string]int{"alice": 1, "bob": 1}, inbox); d != "" {
		t.Errorf("notifications per recipient (-want +got):\n%s", d)
	}
	var got []string
	for _, m := range env.smtp.Messages() {
		got = append(got, m.To...)
	}
	if d := cmp.Diff([]string{"alice@taskfn.test", "bob@taskfn.test"}, got, cmpSorted); d != "" || queued != 2 {
		t.Errorf("%d emails queued; sent (-want +got):\n%s", queued, d)
	}
}

// An email the server cannot take now fails the delivery (5xx, retried);
// the redelivery sends it without a second notification, and the message
// is the one first composed.
func TestSinkRetriesEmailNotNotification(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	remember(t, env.db, "alice", "alice@taskfn.test")
	ev := statusChanged(t, "carol", "alice", nil)

	env.smtp.FailNext(2)
	for i := range 2 {
		if status, body := post(t, env.url, ev); status != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d: %d %s, want 503", i, status, body)
		}
	}
	if n := len(env.smtp.Messages()); n != 0 {
		t.Fatalf("%d emails accepted while the server refused", n)
	}
	if status, body := post(t, env.url, ev); status != http.StatusNoContent {
		t.Fatalf("third delivery: %d %s", status, body)
	}
	post(t, env.url, ev) // and once more: nothing left to send

	inbox, _ := counts(t, env.db)
	if d := cmp.Diff(map[string]int{"alice": 1}, inbox); d != "" {
		t.Errorf("notifications (-want +got):\n%s", d)
	}
	msgs := env.smtp.To("alice@taskfn.test")
	if len(msgs) != 1 {
		t.Fatalf("%d emails to alice, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "[taskfn] carol moved “Fix the login page” from in progress to done" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, want := range []string{"Hello alice,", "carol moved “Fix the login page” from in progress to done.", "Task: Fix the login page"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	if m.Header.Get("Message-ID") == "" || m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("headers %v", m.Header)
	}
	var attempts int
	var sent bool
	err := env.db.Primary.QueryRow(context.Background(),
		"SELECT attempts, sent_at IS NOT NULL FROM email_outbox").Scan(&attempts, &sent)
	if err != nil || attempts != 3 || !sent {
		t.Errorf("email record: attempts %d, sent %v, err %v; want 3 attempts, sent", attempts, sent, err)
	}
}

// A recipient the server refuses for good does not hold the event back:
// the delivery succeeds, the refusal is recorded, and it is not retried.
func TestSinkRecordsUndeliverable(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	remember(t, env.db, "alice", "alice@taskfn.test")
	remember(t, env.db, "bob", "bob@taskfn.test")
	env.smtp.Reject("bob@taskfn.test")
	ev := statusChanged(t, "carol", "alice", ptr("bob"))
	for range 2 {
		if status, body := post(t, env.url, ev); status != http.StatusNoContent {
			t.Fatalf("%d %s", status, body)
		}
	}
	if got := len(env.smtp.To("alice@taskfn.test")); got != 1 {
		t.Errorf("%d emails to alice, want 1", got)
	}
	var attempts int
	var lastError string
	err := env.db.Primary.QueryRow(context.Background(),
		"SELECT attempts, last_error FROM email_outbox WHERE to_address = 'bob@taskfn.test' AND failed_at IS NOT NULL").
		Scan(&attempts, &lastError)
	if err != nil || attempts != 1 || !strings.Contains(lastError, "550") {
		t.Errorf("bob's email: attempts %d, error %q, %v; want one refused attempt", attempts, lastError, err)
	}
}

// Events that can never be processed are answered 4xx, which the
// KafkaSource sends to the dead-letter sink without retrying, and leave
// nothing behind. Types notify does not handle are acknowledged.
func TestSinkRejectsPoison(t *testing.T) {
	t.Parallel()
	binary := func(typ, contentType string) http.Header {
		return http.Header{
			"Ce-Specversion": {"1.0"}, "Ce-Id": {uuid.NewString()}, "Ce-Source": {events.SourceTasks},
			"Ce-Type": {typ}, "Content-Type": {contentType},
		}
	}
	valid := `{"actor":"carol","old_status":"todo","new_status":"done","task":{"id":"` + uuid.NewString() + `","owner_id":"alice","title":"t"}}`
	tests := []struct {
		name   string
		header http.Header
		body   string
		want   int
	}{
		{"data is not JSON", binary(events.TaskStatusChanged, "application/json"), `{"actor":`, 400},
		{"data is not an object", binary(events.TaskStatusChanged, "application/json"), `[1,2]`, 400},
		{"no task id", binary(events.TaskStatusChanged, "application/json"), `{"actor":"carol","old_status":"todo","new_status":"done","task":{"owner_id":"alice"}}`, 400},
		{"unknown status", binary(events.TaskStatusChanged, "application/json"), strings.Replace(valid, `"done"`, `"finished"`, 1), 400},
		{"assignment without owner", binary(events.TaskAssigned, "application/json"), `{"actor":"carol","new_assignee_id":"bob","task":{"id":"` + uuid.NewString() + `"}}`, 400},
		{"report without requester", binary(events.ReportCompleted, "application/json"), `{"report_id":"` + uuid.NewString() + `","kind":"tasks_export","status":"succeeded","rows":1}`, 400},
		{"not JSON at all", binary(events.TaskStatusChanged, "text/plain"), `done`, 400},
		{"no data", binary(events.TaskStatusChanged, "application/json"), ``, 400},
		{"not a CloudEvent", http.Header{"Content-Type": {"application/json"}}, valid, 400},
		{"no id", func() http.Header {
			h := binary(events.TaskStatusChanged, "application/json")
			h.Del("Ce-Id")
			return h
		}(), valid, 400},
		{"structured, malformed", http.Header{"Content-Type": {"application/cloudevents+json"}}, `{"specversion":"1.0",`, 400},
		{"too large", binary(events.TaskStatusChanged, "application/json"), `{"x":"` + strings.Repeat("a", 1<<20) + `"}`, 413},
		{"a type notify ignores", binary(events.TaskUpdated, "application/json"), `{}`, 204},
		{"the valid one, for contrast", binary(events.TaskStatusChanged, "application/json"), valid, 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newSinkEnv(t)
			status, body := postRaw(t, env.url, tc.header, tc.body)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if status >= 400 && !strings.Contains(body, `"status":`) {
				t.Errorf("body is not a problem: %s", body)
			}
			inbox, _ := counts(t, env.db)
			var processed int
			if err := env.db.Primary.QueryRow(context.Background(), "SELECT count(*) FROM processed_events").Scan(&processed); err != nil {
				t.Fatal(err)
			}
			if tc.want != 204 && (len(inbox) != 0 || processed != 0) {
				t.Errorf("rejected event left %v notifications, %d records", inbox, processed)
			}
		})
	}
}

// With the database unreachable the sink answers 503: the event is
// redelivered later, never dead-lettered.
func TestSinkDatabaseDown(t *testing.T) {
	t.Parallel()
	env := newSinkEnvWith(t, func(cfg *notify.Config) {
		cfg.DB = pg.Config{
			URL: "postgres://postgres@127.0.0.1:1/none?sslmode=disable", MaxConns: 1,
			ConnectTimeout: time.Second, QueryExecMode: "cache_statement", MaxConnLifetime: time.Hour, MaxConnIdleTime: time.Hour,
		}
		cfg.SMTP = notify.SMTPConfig{} // no mail relay
	})
	status, body := post(t, env.url, statusChanged(t, "carol", "alice", nil))
	if status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", status, body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
		t.Errorf("the problem leaks internals: %s", body)
	}
}

// A completed report notifies its requester, by inbox and email.
func TestSinkReportCompleted(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	remember(t, env.db, "carol", "carol@taskfn.test")
	reportID := uuid.Must(uuid.NewV7())
	ev, err := events.NewReportEvent(events.DefaultReportsTopic, reportID, events.ReportCompletedData{
		ReportID: reportID, Kind: "tasks_export", RequestedBy: "carol", Status: "succeeded", Rows: 42,
	})
	if err != nil {
		t.Fatal(err)
	}
	ce, err := ev.CloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	if status, body := post(t, env.url, ce); status != http.StatusNoContent {
		t.Fatalf("%d %s", status, body)
	}
	page, err := env.store.List(context.Background(), notify.ListQuery{Recipient: "carol", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 {
		t.Fatalf("%d notifications", len(page.Items))
	}
	n := page.Items[0]
	if n.Kind != notify.KindReportCompleted || n.ReportID == nil || *n.ReportID != reportID || n.Summary != "Your tasks export report is ready" {
		t.Errorf("notification %+v", n)
	}
	msgs := env.smtp.To("carol@taskfn.test")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Body, "/reports/"+reportID.String()) {
		t.Errorf("emails to carol: %+v", msgs)
	}
}
