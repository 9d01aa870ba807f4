package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/taskfn/taskfn/shared/apispec"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/notify/smtptest"
	"github.com/taskfn/taskfn/shared/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestREADMEFlow runs the dev runner as make dev does and walks the README's
// curl examples over HTTP: a password-grant token from the development
// issuer, then create, read, list, change and delete a task.
func TestREADMEFlow(t *testing.T) {
	base := startDev(t, nil)

	token(t, base, "carol", "wrong", http.StatusUnauthorized)
	carol := token(t, base, "carol", "carol", 200)
	dave := token(t, base, "dave", "dave", 200)
	call(t, base, "GET", "/tasks", "", "", 401)

	created := call(t, base, "POST", "/tasks", carol, `{"title":"Write the release notes","priority":"high","labels":["docs"]}`, 201)
	id, _ := created["id"].(string)
	call(t, base, "GET", "/tasks/"+id, carol, "", 200)
	call(t, base, "GET", "/tasks/"+id, dave, "", 404) // not dave's to see
	page := call(t, base, "GET", "/tasks?status=todo&limit=10", carol, "", 200)
	if items, _ := page["items"].([]any); len(items) != 1 {
		t.Fatalf("list: %v", page)
	}
	changed := call(t, base, "PATCH", "/tasks/"+id, carol, `{"status":"in_progress"}`, 200)
	if changed["status"] != "in_progress" || changed["version"] != float64(2) {
		t.Fatalf("patch: %v", changed)
	}
	call(t, base, "DELETE", "/tasks/"+id, carol, "", 204)
	call(t, base, "GET", "/tasks/"+id, carol, "", 404)

	// The README's custom fields: carol defines two in "web", dave (in its
	// Keycloak group) lists them.
	call(t, base, "POST", "/projects", carol, `{"key":"web","name":"Web site"}`, 201)
	call(t, base, "POST", "/projects/web/fields", carol, `{"name":"severity","type":"select","options":[{"name":"low"},{"name":"medium"},{"name":"high"}]}`, 201)
	call(t, base, "POST", "/projects/web/fields", carol, `{"name":"estimate","type":"number"}`, 201)
	fields := call(t, base, "GET", "/projects/web/fields", dave, "", 200)
	items, _ := fields["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("fields: %v", fields)
	}
	// A task with values, found by the README's filtered list.
	var high string
	if sev, _ := items[0].(map[string]any); sev != nil {
		opts, _ := sev["options"].([]any)
		if o, _ := opts[len(opts)-1].(map[string]any); o != nil && o["name"] == "high" {
			high, _ = o["id"].(string)
		}
	}
	call(t, base, "POST", "/tasks", carol, `{"title":"Fix the login page","project":"web","fields":{"severity":"`+high+`","estimate":3}}`, 201)
	found := call(t, base, "GET", "/tasks?project=web&field.severity=high&field.estimate%5Bgte%5D=2", carol, "", 200)
	if items, _ := found["items"].([]any); len(items) != 1 {
		t.Fatalf("filtered list: %v", found)
	}

	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`taskfn_http_requests_total{method="POST",route="create-task",status="201"} 2`, "taskfn_pgxpool_max_conns", "taskfn_http_request_duration_seconds_bucket"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEventsEndToEnd: a change travels outbox → Kafka (embedded broker,
// sarama over TCP) → KafkaSource stand-in → notify, and reaches the
// owner's inbox and mailbox once; a report request is built by the worker
// behind its own KafkaSource and downloaded.
func TestEventsEndToEnd(t *testing.T) {
	mail := smtptest.Start(t)
	base := startDev(t, func(c *devConfig) {
		c.Notify.SMTP.Addr, c.Notify.SMTP.TLS = mail.Addr, "none"
	})
	carol := token(t, base, "carol", "carol", 200)
	bob := token(t, base, "bob", "bob", 200)

	created := call(t, base, "POST", "/tasks", carol, `{"title":"Rotate the keys","labels":["ops"]}`, 201)
	id, _ := created["id"].(string)
	call(t, base, "PATCH", "/tasks/"+id, bob, `{"status":"blocked"}`, 200)

	inbox := eventually(t, func() (map[string]any, bool) {
		page := call(t, base, "GET", "/notifications", carol, "", 200)
		items, _ := page["items"].([]any)
		return page, len(items) == 1
	})
	n := inbox["items"].([]any)[0].(map[string]any)
	if n["task_id"] != id || n["actor"] == nil {
		t.Errorf("notification %v", n)
	}
	eventually(t, func() (map[string]any, bool) { return nil, len(mail.Messages()) >= 1 })
	time.Sleep(500 * time.Millisecond) // a duplicate would have arrived by now
	if msgs := mail.Messages(); len(msgs) != 1 || !strings.Contains(strings.Join(msgs[0].To, ","), "carol") {
		t.Errorf("emails: %+v", msgs)
	}
	// bob acted, so bob's inbox stays empty.
	if page := call(t, base, "GET", "/notifications", bob, "", 200); len(page["items"].([]any)) != 0 {
		t.Errorf("the actor was notified: %v", page)
	}

	// A mention reaches the person named, who shares the web project with
	// carol through a Keycloak group, as a mention.
	dave := token(t, base, "dave", "dave", 200)
	call(t, base, "GET", "/notifications", dave, "", 200) // dave is known by a request
	call(t, base, "POST", "/projects", carol, `{"key":"web","name":"Web"}`, 201)
	shared := call(t, base, "POST", "/tasks", carol, `{"title":"Review the page","project":"web"}`, 201)
	call(t, base, "POST", "/tasks/"+shared["id"].(string)+"/comments", carol, `{"body":"@dave could you look?"}`, 201)
	mentioned := eventually(t, func() (map[string]any, bool) {
		page := call(t, base, "GET", "/notifications", dave, "", 200)
		items, _ := page["items"].([]any)
		return page, len(items) == 1
	})
	if n := mentioned["items"].([]any)[0].(map[string]any); n["kind"] != "comment.mentioned" || n["task_id"] != shared["id"] {
		t.Errorf("dave's notification %v, want the mention", n)
	}

	// The reproduction: an event POSTed straight to the notify
	// sink, without a sender token or with a user's, is refused and puts
	// nothing in dave's inbox.
	forged := `{"actor":"mallory","old_assignee_id":null,"new_assignee_id":"` + subject(t, dave) +
		`","task":{"id":"` + shared["id"].(string) + `","title":"Click here","description":"","status":"todo","priority":"medium",` +
		`"due_at":null,"owner_id":"` + subject(t, carol) + `","assignee_id":"` + subject(t, dave) + `","labels":[],` +
		`"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","version":9}}`
	for _, tok := range []string{"", carol, "not-a-jwt"} {
		if code := postEvent(t, base+notifySink, tok, "dev.taskfn.task.assigned.v1", forged); code != http.StatusUnauthorized {
			t.Errorf("forged event with token %.10q: %d, want 401", tok, code)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if page := call(t, base, "GET", "/notifications", dave, "", 200); len(page["items"].([]any)) != 1 {
		t.Errorf("dave's inbox after the forged events: %v", page["items"])
	}

	rep := call(t, base, "POST", "/reports", carol, `{"kind":"tasks_export","format":"csv"}`, 202)
	rid, _ := rep["id"].(string)
	eventually(t, func() (map[string]any, bool) {
		r := call(t, base, "GET", "/reports/"+rid, carol, "", 200)
		return r, r["status"] == "succeeded"
	})
	req, _ := http.NewRequest("GET", base+"/reports/"+rid+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+carol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Rotate the keys") {
		t.Errorf("content %d: %s", resp.StatusCode, body)
	}
}

// eventually polls f until it reports done, for up to 20 s.
func eventually(t testing.TB, f func() (map[string]any, bool)) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reached in 20s; last: %v", v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func call(t testing.TB, base, method, path, token, body string, want int) map[string]any {
	t.Helper()
	resp, b := httpxtest.Call(t, nil, method, base+path, token, body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	apispec.Check(t, method, path, resp, b)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return out
}

// token asks the development issuer for a password-grant access token.
func token(t testing.TB, base, user, password string, want int) string {
	t.Helper()
	resp, err := http.PostForm(base+"/realms/taskfn/protocol/openid-connect/token", url.Values{
		"grant_type": {"password"}, "client_id": {"taskfn-cli"}, "username": {user}, "password": {password},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != want {
		t.Fatalf("token for %s: %d, want %d", user, resp.StatusCode, want)
	}
	return tok.AccessToken
}

// startDev runs the dev runner as make dev does, on a free port with its
// own database and embedded broker; adjust may change the configuration.
func startDev(t testing.TB, adjust func(*devConfig)) string {
	t.Helper()
	db := pgtest.New(t)
	var cfg devConfig
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.ExternalIssuer = ""
	cfg.RealmFile = "../../knative/keycloak/realm-taskfn.json"
	cfg.Task.DB.URL = db.Primary.Config().ConnString()
	cfg.Task.Cache.KeyPrefix = "taskfn-devtest-" + strings.ReplaceAll(t.Name(), "/", "-") + ":"
	cfg.RelayInterval = 200 * time.Millisecond
	if adjust != nil {
		adjust(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev runner: %v", err)
		}
	})
	waitReady(t, base)
	return base
}

func waitReady(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("dev runner not ready in 20s")
}

// TestLifecycleEventsEndToEnd: a recurring task with a reminder, through
// the embedded broker. The remind tick's events reach the owner's inbox
// and mailbox through notify (a reminder, then one overdue notice); marking the task
// done files its next occurrence through the recur sink, once, even when
// it is reopened and done again.
func TestLifecycleEventsEndToEnd(t *testing.T) {
	mail := smtptest.Start(t)
	base := startDev(t, func(c *devConfig) {
		c.RemindInterval = 200 * time.Millisecond
		c.Notify.SMTP.Addr, c.Notify.SMTP.TLS = mail.Addr, "none"
	})
	carol := token(t, base, "carol", "carol", 200)
	due := time.Now().UTC().Add(4 * time.Second).Truncate(time.Second)
	created := call(t, base, "POST", "/tasks", carol, `{"title":"Water the plants","due_at":"`+due.Format(time.RFC3339)+
		`","recurrence":"FREQ=WEEKLY;COUNT=4","recurrence_tz":"Europe/Berlin","reminders":["-PT2S"]}`, 201)
	id := created["id"].(string)

	kinds := func() []string {
		page := call(t, base, "GET", "/notifications", carol, "", 200)
		var out []string
		for _, it := range page["items"].([]any) {
			out = append(out, it.(map[string]any)["kind"].(string))
		}
		return out
	}
	eventually(t, func() (map[string]any, bool) {
		k := kinds()
		return map[string]any{"kinds": k}, len(k) == 2 // newest first: overdue, then the reminder
	})
	time.Sleep(time.Second) // more ticks: nothing is sent twice
	if k := kinds(); len(k) != 2 || k[0] != "task.overdue" || k[1] != "task.reminder" {
		t.Fatalf("notifications %v, want one reminder then one overdue notice", k)
	}
	// And by email, once each.
	eventually(t, func() (map[string]any, bool) { return nil, len(mail.Messages()) >= 2 })
	if msgs := mail.Messages(); len(msgs) != 2 || !strings.Contains(msgs[0].Subject+msgs[1].Subject, "Reminder: ") {
		t.Errorf("emails: %d, want the reminder and the overdue notice", len(msgs))
	}

	series := func() []any {
		page := call(t, base, "GET", "/tasks?limit=200", carol, "", 200)
		var out []any
		for _, it := range page["items"].([]any) {
			if it.(map[string]any)["series_id"] == id {
				out = append(out, it)
			}
		}
		return out
	}
	call(t, base, "PATCH", "/tasks/"+id, carol, `{"status":"done"}`, 200)
	next := eventually(t, func() (map[string]any, bool) {
		s := series()
		if len(s) != 1 {
			return map[string]any{"series": s}, false
		}
		return s[0].(map[string]any), true
	})
	if next["status"] != "todo" || next["due_at"] != due.AddDate(0, 0, 7).Format(time.RFC3339) ||
		next["recurrence"] != "FREQ=WEEKLY;COUNT=3" || next["title"] != "Water the plants" {
		t.Errorf("next occurrence %v", next)
	}
	call(t, base, "PATCH", "/tasks/"+id, carol, `{"status":"todo"}`, 200)
	call(t, base, "PATCH", "/tasks/"+id, carol, `{"status":"done"}`, 200)
	time.Sleep(time.Second) // a second occurrence would have been filed by now
	if s := series(); len(s) != 1 {
		t.Fatalf("%d occurrences after done, reopen, done; want 1", len(s))
	}
}

// postEvent POSTs a binary-mode CloudEvent to a sink as a forger would,
// with token as bearer when set, and returns the status.
func postEvent(t testing.TB, url, token, typ, data string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(data))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", "forged-1")
	req.Header.Set("Ce-Source", "/apis/v1/namespaces/dev/kafkasources/notify")
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// subject reads the sub claim of a token the test was given.
func subject(t testing.TB, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Sub string `json:"sub"`
	}
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Sub == "" {
		t.Fatalf("no subject in %q", token)
	}
	return c.Sub
}

// TestProducersEndToEnd: ingest-events as make dev mounts it. A command
// over HTTP as carol; an alert from Alertmanager's client with its
// client-credentials token (the realm's service account); a command from a
// mapped producer on the commands topic, through the KafkaSource stand-in,
// acting as that producer; one from an unknown source dead-lettered.
func TestProducersEndToEnd(t *testing.T) {
	broker, err := devkafka.Start(devkafka.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = broker.Close() })
	base := startDev(t, func(c *devConfig) {
		c.Kafka.Brokers = broker.Brokers()
		c.Ingest.Producers = ingest.Producers{"/dev/ci": {Subject: "svc-ci", Roles: []auth.Role{auth.RoleMember}}}
	})
	carol := token(t, base, "carol", "carol", 200)
	req, err := http.NewRequest(http.MethodPost, base+"/events", strings.NewReader(
		`{"specversion":"1.0","id":"dev-1","source":"/dev/curl","type":"dev.taskfn.command.task.create.v1","data":{"title":"From curl"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+carol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /events: %d", resp.StatusCode)
	}

	var evs []event.Event
	for _, src := range []string{"/dev/ci", "/dev/stranger"} {
		ev := event.New()
		ev.SetID("kafka-" + src)
		ev.SetSource(src)
		ev.SetType("dev.taskfn.command.task.create.v1")
		if err := ev.SetData(event.ApplicationJSON, map[string]any{"title": "From " + src}); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	kafkatest.Produce(t, broker.Brokers(), "taskfn.commands", event.Event.Source, evs...)
	// Alertmanager's client, as its webhook_config's oauth2 gets a token:
	// client credentials, as the realm's service account.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"taskfn-alertmanager"},
		"client_secret": {"taskfn-alertmanager-dev-secret-change-me"}}
	tr, err := http.PostForm(base+"/realms/taskfn/protocol/openid-connect/token", form)
	if err != nil {
		t.Fatal(err)
	}
	var sa struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(tr.Body).Decode(&sa)
	tr.Body.Close()
	alert := `{"version":"4","status":"firing","receiver":"taskfn","alerts":[{"status":"firing","labels":{"alertname":"DiskFull","severity":"critical"},` +
		`"annotations":{"summary":"From Alertmanager"},"startsAt":"2026-12-07T17:00:00Z","fingerprint":"dev0fingerprint"}]}`
	areq, err := http.NewRequest(http.MethodPost, base+"/events/alertmanager", strings.NewReader(alert))
	if err != nil {
		t.Fatal(err)
	}
	areq.Header.Set("Content-Type", "application/json")
	areq.Header.Set("Authorization", "Bearer "+sa.AccessToken)
	aresp, err := http.DefaultClient.Do(areq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(aresp.Body)
	aresp.Body.Close()
	if aresp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":201`) ||
		!strings.Contains(string(body), `"owner_id":"8c3f1e95-4d2a-4b7c-a6e1-3f9d2c7b5b01"`) {
		t.Fatalf("POST /events/alertmanager as the service account: %d %s", aresp.StatusCode, body)
	}

	alice := token(t, base, "alice", "alice", 200)
	eventually(t, func() (map[string]any, bool) {
		page := call(t, base, "GET", "/tasks", alice, "", 200)
		items, _ := page["items"].([]any)
		owners := map[string]bool{}
		for _, it := range items {
			owners[it.(map[string]any)["owner_id"].(string)] = true
		}
		return page, len(items) == 3 && owners["svc-ci"]
	})
}
