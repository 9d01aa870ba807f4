package notify_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/notify/smtptest"
	"github.com/taskfn/taskfn/shared/pg"
)

const testFrom = "taskfn <noreply@taskfn.test>"

// deliverAsync posts ev as post does, from a goroutine of its own, and
// returns where its status arrives (0 after a failure, reported).
func deliverAsync(t testing.TB, url string, ev event.Event) <-chan int {
	t.Helper()
	status := make(chan int, 1)
	go func() {
		req, err := cehttp.NewHTTPRequestFromEvent(context.Background(), url+"/", ev)
		if err != nil {
			t.Error(err)
			status <- 0
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			status <- 0
			return
		}
		_ = resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

// receive waits for a value on c; a test that waits 30s is stuck.
func receive[T any](t testing.TB, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s after 30s", what)
		panic("unreachable")
	}
}

// record stores ev's notices and emails as the sink does, without sending.
func record(t testing.TB, store *notify.Store, ev event.Event) notify.Recorded {
	t.Helper()
	notices, err := notify.Decide(ev.Type(), ev.DataContentType(), ev.Data())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Record(context.Background(), ev.ID(), notices, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// emailState is what email_outbox says of one email.
type emailState struct {
	Attempts  int
	Sent      bool
	Failed    bool
	Claimed   bool   // a claim token is set
	LastError string // compared as a substring: "451" matches the whole reply
}

func checkEmail(t testing.TB, db *pg.DB, to string, want emailState) {
	t.Helper()
	const q = `
SELECT attempts, sent_at IS NOT NULL, failed_at IS NOT NULL, claim_token IS NOT NULL, coalesce(last_error, '')
FROM email_outbox
WHERE to_address = $1`
	var got emailState
	err := db.Primary.QueryRow(context.Background(), q, to).Scan(&got.Attempts, &got.Sent, &got.Failed, &got.Claimed, &got.LastError)
	if err != nil {
		t.Fatalf("email to %s: %v", to, err)
	}
	if want.LastError != "" && strings.Contains(got.LastError, want.LastError) {
		got.LastError = want.LastError
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("email to %s (-want +got):\n%s", to, d)
	}
}

// While the mail relay stalls in the middle of a send, the sender holds
// no connection, transaction or lock: with a pool of a single connection
// the inbox still reads and writes and another event is recorded, and the
// database shows no transaction open and no lock on email_outbox. (Sending
// inside a transaction, each of these would wait for the relay.)
func TestSendHoldsNothingWhileTheRelayStalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		conns int32
	}{
		{"pool of one connection", 1},
		{"pool of four connections", 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The sender waits for the relay far longer than these
			// calls may take: a connection held for the send would make
			// them wait for the release, which comes only after them.
			env := newSinkEnvWith(t, func(cfg *notify.Config) {
				cfg.DB.MaxConns = tc.conns
				cfg.SMTP.Timeout, cfg.SMTP.ClaimLease = time.Minute, 2*time.Minute
			})
			db := env.db
			remember(t, db, "alice", "alice@taskfn.test")
			stalled, release := env.smtp.Stall()
			defer release()
			status := deliverAsync(t, env.url, statusChanged(t, "carol", "alice", nil))
			receive(t, stalled, "send reaching the relay")

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			page, err := env.store.List(ctx, notify.ListQuery{Recipient: "alice", Limit: 10})
			if err != nil || len(page.Items) != 1 {
				t.Fatalf("inbox during the send: %d items, %v", len(page.Items), err)
			}
			if _, err := env.store.MarkRead(ctx, "alice", page.Items[0].ID); err != nil {
				t.Fatalf("mark read during the send: %v", err)
			}
			other := statusChanged(t, "dave", "alice", nil)
			notices, err := notify.Decide(other.Type(), other.DataContentType(), other.Data())
			if err != nil {
				t.Fatal(err)
			}
			if rec, err := env.store.Record(ctx, other.ID(), notices, testFrom); err != nil || rec.Emails != 1 {
				t.Fatalf("another event during the send: %+v, %v", rec, err)
			}
			const open = `
SELECT count(*)
FROM pg_stat_activity
WHERE datname = current_database()
  AND backend_type = 'client backend'
  AND pid <> pg_backend_pid()
  AND xact_start IS NOT NULL`
			// Every test database is a clone of one template, so
			// email_outbox has the same oid in each: match the database.
			const locks = `
SELECT count(*)
FROM pg_locks
WHERE database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND relation = 'email_outbox'::regclass
  AND pid <> pg_backend_pid()`
			var txs, held int
			if err := db.Primary.QueryRow(ctx, open).Scan(&txs); err != nil {
				t.Fatal(err)
			}
			if err := db.Primary.QueryRow(ctx, locks).Scan(&held); err != nil {
				t.Fatal(err)
			}
			if txs != 0 || held != 0 {
				t.Errorf("during the send: %d other transactions open, %d locks on email_outbox; want none", txs, held)
			}
			checkEmail(t, db, "alice@taskfn.test", emailState{Attempts: 1, Claimed: true})

			release()
			if s := receive(t, status, "delivery status"); s != http.StatusNoContent {
				t.Fatalf("delivery: %d, want 204", s)
			}
			if n := len(env.smtp.To("alice@taskfn.test")); n != 1 {
				t.Errorf("%d emails to alice, want 1", n)
			}
		})
	}
}

// Each attempt is recorded: the claim counts it, and the answer settles
// the email (sent, failed for good) or releases it with the error for the
// redelivery, which sends it once.
func TestSendRecordsEachAttempt(t *testing.T) {
	t.Parallel()
	const to = "alice@taskfn.test"
	sent := emailState{Attempts: 1, Sent: true}
	refused := emailState{Attempts: 1, Failed: true, LastError: "550"}
	tests := []struct {
		name        string
		relay       func(*smtptest.Server)
		first       int
		afterFirst  emailState
		afterSecond emailState
		messages    int
	}{
		{"accepted", func(*smtptest.Server) {}, 204, sent, sent, 1},
		{
			"refused for now (451)", func(s *smtptest.Server) { s.FailNext(1) },
			503, emailState{Attempts: 1, LastError: "451"}, emailState{Attempts: 2, Sent: true}, 1,
		},
		{"refused for good (550)", func(s *smtptest.Server) { s.Reject(to) }, 204, refused, refused, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newSinkEnv(t)
			remember(t, env.db, "alice", to)
			tc.relay(env.smtp)
			ev := statusChanged(t, "carol", "alice", nil)
			if status, body := post(t, env.url, ev); status != tc.first {
				t.Fatalf("first delivery: %d %s, want %d", status, body, tc.first)
			}
			checkEmail(t, env.db, to, tc.afterFirst)
			if status, body := post(t, env.url, ev); status != http.StatusNoContent {
				t.Fatalf("second delivery: %d %s, want 204", status, body)
			}
			checkEmail(t, env.db, to, tc.afterSecond)
			if n := len(env.smtp.To(to)); n != tc.messages {
				t.Errorf("%d messages at the relay, want %d", n, tc.messages)
			}
		})
	}
}

// Deliveries of one event at once, while the relay is slow, send each
// email once. The second delivery starts while the first is stuck on one
// email: it must leave that one alone and send the other, so the relay
// holds two different messages at once; the rest find both claimed.
func TestConcurrentDeliveriesSendEachEmailOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		deliveries int
	}{
		{"two", 2},
		{"five", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := newSinkEnv(t)
			remember(t, env.db, "alice", "alice@taskfn.test")
			remember(t, env.db, "bob", "bob@taskfn.test")
			ev := statusChanged(t, "carol", "alice", ptr("bob"))
			stalled, release := env.smtp.Stall()
			statuses := []<-chan int{deliverAsync(t, env.url, ev)}
			receive(t, stalled, "first delivery's send")
			for range tc.deliveries - 1 {
				statuses = append(statuses, deliverAsync(t, env.url, ev))
			}
			receive(t, stalled, "second email's send, by another delivery")
			release()
			for i, s := range statuses {
				if got := receive(t, s, "delivery status"); got != http.StatusNoContent {
					t.Errorf("delivery %d: %d, want 204", i, got)
				}
			}
			var got []string
			for _, m := range env.smtp.Messages() {
				got = append(got, m.To...)
			}
			if d := cmp.Diff([]string{"alice@taskfn.test", "bob@taskfn.test"}, got, cmpSorted); d != "" {
				t.Errorf("messages at the relay (-want +got):\n%s", d)
			}
			for _, to := range []string{"alice@taskfn.test", "bob@taskfn.test"} {
				checkEmail(t, env.db, to, emailState{Attempts: 1, Sent: true})
			}
		})
	}
}

// A claim whose sender died is taken over once it has run out, and not
// before: a delivery that meets a live one waits for it.
func TestDeadSendersClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		runs     string // the dead claim's lease from now, an SQL interval
		waitsFor bool
	}{
		{"run out", "-1 second", false},
		{"still live", "300 milliseconds", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newSinkEnv(t)
			remember(t, env.db, "alice", "alice@taskfn.test")
			ev := statusChanged(t, "carol", "alice", nil)
			record(t, env.store, ev)
			const die = `
UPDATE email_outbox
SET claim_token = gen_random_uuid(),
    claimed_until = now() + $1::interval,
    attempts = attempts + 1
RETURNING claimed_until`
			var deadline time.Time
			if err := env.db.Primary.QueryRow(ctx, die, tc.runs).Scan(&deadline); err != nil {
				t.Fatal(err)
			}
			var sentAfterDeadline bool
			send := func(ctx context.Context, e notify.Email) error {
				// The database's clock, the one the lease is kept by.
				if err := env.db.Primary.QueryRow(ctx, "SELECT now() >= $1", deadline).Scan(&sentAfterDeadline); err != nil {
					return err
				}
				return env.sender.Send(ctx, e)
			}
			got, err := env.store.SendPending(ctx, ev.ID(), time.Minute, send)
			if err != nil {
				t.Fatal(err)
			}
			if got != (notify.Sent{Sent: 1}) {
				t.Errorf("SendPending: %+v, want one sent", got)
			}
			if !sentAfterDeadline {
				t.Error("sent while the dead sender's claim was live")
			}
			if n := len(env.smtp.To("alice@taskfn.test")); n != 1 {
				t.Errorf("%d emails to alice, want 1", n)
			}
			checkEmail(t, env.db, "alice@taskfn.test", emailState{Attempts: 2, Sent: true})
		})
	}
}

// A sender whose claim ran out and was taken over records nothing,
// whatever its send came to: the new claim stands, and its sender's
// outcome is the one kept.
func TestOvertakenSenderChangesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		slow     error // what the slow sender's send returns in the end
		wantSent notify.Sent
		wantErr  string
	}{
		{"its send was accepted", nil, notify.Sent{LeaseLost: 1}, ""},
		{"refused for good", &notify.UndeliverableError{Err: errors.New("550 no such mailbox")}, notify.Sent{LeaseLost: 1}, ""},
		{"refused for now", errors.New("451 try again later"), notify.Sent{}, "cannot take the email now"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			env := newSinkEnv(t)
			remember(t, env.db, "alice", "alice@taskfn.test")
			ev := statusChanged(t, "carol", "alice", nil)
			record(t, env.store, ev)

			type result struct {
				sent notify.Sent
				err  error
			}
			// The slow sender claims for 100ms and answers when told.
			slowSending, slowAnswer, slowDone := make(chan struct{}), make(chan error), make(chan result, 1)
			go func() {
				s, err := env.store.SendPending(ctx, ev.ID(), 100*time.Millisecond, func(context.Context, notify.Email) error {
					close(slowSending)
					return <-slowAnswer
				})
				slowDone <- result{s, err}
			}()
			receive(t, slowSending, "slow sender's send")
			for deadline := time.Now().Add(30 * time.Second); ; {
				var over bool
				if err := env.db.Primary.QueryRow(ctx, "SELECT claimed_until <= now() FROM email_outbox").Scan(&over); err != nil {
					t.Fatal(err)
				}
				if over {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the slow sender's claim never ran out")
				}
				time.Sleep(10 * time.Millisecond)
			}

			// The next one takes the email over and is held mid-send.
			nextSending, nextGo, nextDone := make(chan struct{}), make(chan struct{}), make(chan result, 1)
			go func() {
				s, err := env.store.SendPending(ctx, ev.ID(), time.Minute, func(ctx context.Context, e notify.Email) error {
					close(nextSending)
					<-nextGo
					return env.sender.Send(ctx, e)
				})
				nextDone <- result{s, err}
			}()
			receive(t, nextSending, "next sender's send")
			var token uuid.UUID
			if err := env.db.Primary.QueryRow(ctx, "SELECT claim_token FROM email_outbox").Scan(&token); err != nil {
				t.Fatal(err)
			}

			slowAnswer <- tc.slow
			slow := receive(t, slowDone, "slow sender's end")
			if slow.sent != tc.wantSent || (tc.wantErr == "") != (slow.err == nil) ||
				(slow.err != nil && !strings.Contains(slow.err.Error(), tc.wantErr)) {
				t.Errorf("slow sender: %+v, %v; want %+v, error %q", slow.sent, slow.err, tc.wantSent, tc.wantErr)
			}
			var still uuid.UUID
			if err := env.db.Primary.QueryRow(ctx, "SELECT claim_token FROM email_outbox").Scan(&still); err != nil || still != token {
				t.Errorf("claim after the slow sender's mark: %v, %v; want the next sender's %v", still, err, token)
			}
			checkEmail(t, env.db, "alice@taskfn.test", emailState{Attempts: 2, Claimed: true})

			close(nextGo)
			if next := receive(t, nextDone, "next sender's end"); next.err != nil || next.sent != (notify.Sent{Sent: 1}) {
				t.Errorf("next sender: %+v, %v; want one sent", next.sent, next.err)
			}
			checkEmail(t, env.db, "alice@taskfn.test", emailState{Attempts: 2, Sent: true})
			if n := len(env.smtp.To("alice@taskfn.test")); n != 1 {
				t.Errorf("%d emails to alice, want 1", n)
			}
		})
	}
}
