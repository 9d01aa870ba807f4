package webhookapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/webhook"
)

// Each event reaches the receiver as a CloudEvent in the webhook's
// content mode, signed so the official Standard Webhooks library
// verifies it, with the event id as webhook-id.
func TestDeliverySignedCloudEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	e.project("web")
	for _, mode := range []string{webhook.Structured, webhook.Binary} {
		t.Run(mode, func(t *testing.T) {
			rc := newReceiver(t, nil)
			e.hook(maint, ptr("web"), rc, map[string]any{"content_mode": mode})
			ev := taskEvent(t, "web")
			if got := e.send(ev); got != http.StatusNoContent {
				t.Fatalf("sink: %d", got)
			}
			eventually(t, "the delivery", func() bool { return len(rc.received()) == 1 })
			got := rc.received()[0]
			if got.verified != nil {
				t.Fatalf("the official verifier refuses the signature: %v", got.verified)
			}
			if got.ev == nil || got.ev.ID() != ev.ID() || got.ev.Type() != events.TaskCreated || got.header.Get("webhook-id") != ev.ID() {
				t.Fatalf("got %v, webhook-id %q; want event %s", got.ev, got.header.Get("webhook-id"), ev.ID())
			}
			ct := got.header.Get("Content-Type")
			if structured := strings.HasPrefix(ct, "application/cloudevents+json"); structured != (mode == webhook.Structured) {
				t.Errorf("%s mode: Content-Type %q", mode, ct)
			}
			if binary := got.header.Get("ce-id") != ""; binary != (mode == webhook.Binary) {
				t.Errorf("%s mode: ce-id %q", mode, got.header.Get("ce-id"))
			}
			var data events.TaskCreatedData
			if err := json.Unmarshal(got.ev.Data(), &data); err != nil || data.Task.Project != "web" {
				t.Errorf("data %s: %v", got.ev.Data(), err)
			}
		})
	}
}

// A redelivered Kafka event (the same id) is one delivery: the receiver
// that answered 2xx is never posted it again, however often it comes.
func TestRedeliveredEventPostsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	rc := newReceiver(t, nil)
	h := e.hook(maint, ptr("~maint"), rc, nil)
	ev := taskEvent(t, "~maint")
	for range 3 {
		if got := e.send(ev); got != http.StatusNoContent {
			t.Fatalf("sink: %d", got)
		}
	}
	eventually(t, "the delivery", func() bool { return len(rc.received()) >= 1 })
	e.tick()
	if got := e.send(ev); got != http.StatusNoContent {
		t.Fatalf("sink: %d", got)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(rc.received()); n != 1 {
		t.Errorf("the receiver got %d posts, want 1", n)
	}
	ds := decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, "/webhooks/"+h.ID.String()+"/deliveries", nil)).Items
	if len(ds) != 1 || ds[0].State != "delivered" || ds[0].Attempts != 1 || ds[0].EventID != ev.ID() || ds[0].StatusCode == nil || *ds[0].StatusCode != 204 {
		t.Errorf("deliveries %+v", ds)
	}
	// Redeliver on request: the same delivery, sent once more.
	e.must(http.StatusAccepted, maint, http.MethodPost, "/webhooks/"+h.ID.String()+"/deliveries/"+ds[0].ID.String()+"/redeliver", nil)
	if res := e.tick(); res.Delivered != 1 {
		t.Errorf("tick after redeliver: %+v", res)
	}
	if got := rc.received(); len(got) != 2 || got[1].header.Get("webhook-id") != ev.ID() || got[1].verified != nil {
		t.Errorf("after redeliver: %d posts", len(got))
	}
}

// A receiver answering 503 with Retry-After gets the retry no sooner
// than it asked, then the delivery succeeds.
func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	rc := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := e.hook(maint, ptr("~maint"), rc, nil)
	e.send(taskEvent(t, "~maint"))
	eventually(t, "the first attempt", func() bool { return len(rc.received()) == 1 })
	var res webhook.Result
	eventually(t, "the retry", func() bool {
		res = e.tick()
		return res.Delivered == 1
	})
	got := rc.received()
	if gap := got[1].at.Sub(got[0].at); gap < time.Second {
		t.Errorf("retried after %s, before the Retry-After of 1s", gap)
	}
	for _, g := range got {
		if g.verified != nil {
			t.Errorf("attempt not verified: %v", g.verified)
		}
	}
	if got[0].header.Get("webhook-id") != got[1].header.Get("webhook-id") {
		t.Error("a retry changed the webhook-id")
	}
	ds := decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, "/webhooks/"+h.ID.String()+"/deliveries", nil)).Items
	if len(ds) != 1 || ds[0].State != "delivered" || ds[0].Attempts != 2 || *ds[0].StatusCode != 200 {
		t.Errorf("deliveries %+v", ds)
	}
	wh := decode[webhook.Webhook](t, e.must(http.StatusOK, maint, http.MethodGet, "/webhooks/"+h.ID.String(), nil))
	if wh.ConsecutiveFailures != 0 {
		t.Errorf("failures %d after a success, want 0", wh.ConsecutiveFailures)
	}
}

// Fifty failures in a row disable the webhook and tell its owner (an
// event notify turns into an inbox entry); enabling it again resumes
// what was pending.
func TestDisableAfterFiftyFailures(t *testing.T) {
	t.Parallel()
	cfg := testConfig(true)
	cfg.RetryBase, cfg.RetryMax = time.Millisecond, 2*time.Millisecond
	e := newEnv(t, cfg)
	var healthy atomic.Bool
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	h := e.hook(maint, ptr("~maint"), rc, nil)
	for range 10 {
		e.send(taskEvent(t, "~maint"))
	}
	path := "/webhooks/" + h.ID.String()
	eventually(t, "the webhook disabled", func() bool {
		e.tick()
		return !decode[webhook.Webhook](t, e.must(http.StatusOK, maint, http.MethodGet, path, nil)).Enabled
	})
	wh := decode[webhook.Webhook](t, e.must(http.StatusOK, maint, http.MethodGet, path, nil))
	if wh.ConsecutiveFailures != 50 || !strings.Contains(wh.DisabledReason, "50 failed deliveries") {
		t.Errorf("disabled with %d failures, reason %q", wh.ConsecutiveFailures, wh.DisabledReason)
	}
	attempts := len(rc.received())
	if attempts < 50 {
		t.Errorf("%d attempts before disabling, want at least 50 (those in flight finish)", attempts)
	}
	// Disabled: nothing more is attempted.
	e.send(taskEvent(t, "~maint"))
	if res := e.tick(); res.Delivered+res.Retrying+res.Failed != 0 || len(rc.received()) != attempts {
		t.Errorf("a disabled webhook was attempted: %+v", res)
	}

	// The owner is told once: the event is in the outbox, and notify
	// makes an inbox entry of it for the owner.
	rows, err := e.db.Primary.Query(context.Background(), `SELECT event_id, data FROM outbox WHERE type = $1`, events.WebhookDisabled)
	if err != nil {
		t.Fatal(err)
	}
	var datas [][]byte
	for rows.Next() {
		var id string
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			t.Fatal(err)
		}
		datas = append(datas, data)
	}
	if len(datas) != 1 {
		t.Fatalf("%d webhook.disabled events, want 1", len(datas))
	}
	notices, err := notify.Decide(events.WebhookDisabled, event.ApplicationJSON, datas[0])
	if err != nil || len(notices) != 1 || notices[0].Recipient != maint.sub || notices[0].Kind != notify.KindWebhookDisabled {
		t.Fatalf("notify decides %+v, %v", notices, err)
	}

	// On again: failures cleared, the pending deliveries go out.
	healthy.Store(true)
	wh = decode[webhook.Webhook](t, e.must(http.StatusOK, maint, http.MethodPatch, path, map[string]any{"enabled": true}))
	if !wh.Enabled || wh.ConsecutiveFailures != 0 || wh.DisabledReason != "" {
		t.Errorf("re-enabled: %+v", wh)
	}
	eventually(t, "the pending deliveries", func() bool { return e.tick().Delivered > 0 })
}

// Redirects are never followed, and a receiver that became an internal
// address (DNS rebinding, or a policy tightened since registration) is
// refused when dialled.
func TestSSRFRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	var target atomic.Int32
	inside := newReceiver(t, func(_ int, w http.ResponseWriter) { target.Add(1); w.WriteHeader(200) })
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Location", inside.srv.URL)
		w.WriteHeader(http.StatusFound)
	})
	h := e.hook(maint, ptr("~maint"), rc, nil)
	e.send(taskEvent(t, "~maint"))
	eventually(t, "the attempt", func() bool { return len(rc.received()) == 1 })
	var ds []webhook.Delivery
	eventually(t, "the attempt marked", func() bool {
		ds = decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, "/webhooks/"+h.ID.String()+"/deliveries", nil)).Items
		return len(ds) == 1 && ds[0].Attempts == 1
	})
	if ds[0].State != "pending" || *ds[0].StatusCode != http.StatusFound || !strings.Contains(ds[0].Error, "redirect") {
		t.Errorf("after a redirect: %+v", ds[0])
	}
	if target.Load() != 0 {
		t.Error("the redirect was followed")
	}

	// The same deliveries, attempted under the cluster's policy: the
	// dial to loopback is refused, nothing reaches the receiver.
	e.must(http.StatusAccepted, maint, http.MethodPost, "/webhooks/"+h.ID.String()+"/deliveries/"+ds[0].ID.String()+"/redeliver", nil)
	before := len(rc.received())
	res, err := e.strictRun(t)
	if err != nil || res.Retrying != 1 || len(rc.received()) != before {
		t.Errorf("strict run: %+v, %v; %d posts, want %d", res, err, len(rc.received()), before)
	}
	ds = decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, "/webhooks/"+h.ID.String()+"/deliveries", nil)).Items
	if !strings.Contains(ds[0].Error, "loopback") || ds[0].StatusCode != nil {
		t.Errorf("refused dial: %+v", ds[0])
	}
}

// Only events the owner may still see leave: a project webhook gets its
// project's events while its owner is the maintainer; an all-projects
// webhook (an admin's) gets every project's.
func TestOnlyVisibleEventsLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	e.project("web")
	e.must(http.StatusCreated, other, http.MethodPost, "/projects", map[string]any{"key": "ops", "name": "ops"})
	web, all := newReceiver(t, nil), newReceiver(t, nil)
	e.hook(maint, ptr("web"), web, nil)
	e.hook(admin, nil, all, nil)
	e.send(taskEvent(t, "web"))
	e.send(taskEvent(t, "ops"))
	eventually(t, "the deliveries", func() bool { return len(web.received()) == 1 && len(all.received()) == 2 })

	// maint is a member of web now: its webhook stops.
	e.must(http.StatusCreated, maint, http.MethodPut, "/projects/web/members/other", map[string]any{"role": "maintainer"})
	e.must(http.StatusOK, other, http.MethodPut, "/projects/web/members/maint", map[string]any{"role": "member"})
	time.Sleep(time.Second) // the roles cache's bound
	e.send(taskEvent(t, "web"))
	eventually(t, "the admin's delivery", func() bool { return len(all.received()) == 3 })
	time.Sleep(200 * time.Millisecond)
	if n := len(web.received()); n != 1 {
		t.Errorf("the demoted maintainer's webhook got %d, want 1", n)
	}
}

// A slow receiver does not hold up the others, nor the sink.
func TestSlowReceiverDelaysNoOne(t *testing.T) {
	t.Parallel()
	cfg := testConfig(true)
	cfg.SinkWait = 300 * time.Millisecond
	e := newEnv(t, cfg)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newReceiver(t, func(_ int, w http.ResponseWriter) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	fast := newReceiver(t, nil)
	e.hook(maint, ptr("~maint"), slow, nil)
	e.hook(maint, ptr("~maint"), fast, nil)
	start := time.Now()
	e.send(taskEvent(t, "~maint"))
	if took := time.Since(start); took > time.Second {
		t.Errorf("the sink took %s with a slow receiver", took)
	}
	eventually(t, "the fast delivery", func() bool { return len(fast.received()) == 1 })
	if took := fast.received()[0].at.Sub(start); took > time.Second {
		t.Errorf("the fast receiver waited %s", took)
	}
}

// Finished deliveries past their retention are deleted by the tick;
// pending ones stay whatever their age.
func TestTickPrunesFinished(t *testing.T) {
	t.Parallel()
	cfg := testConfig(true)
	cfg.DeliveryRetention = 50 * time.Millisecond
	e := newEnv(t, cfg)
	rc := newReceiver(t, nil)
	h := e.hook(maint, ptr("~maint"), rc, nil)
	e.send(taskEvent(t, "~maint"))
	eventually(t, "the delivery", func() bool { return len(rc.received()) == 1 })
	path := "/webhooks/" + h.ID.String() + "/deliveries"
	eventually(t, "the delivery marked", func() bool {
		ds := decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, path, nil)).Items
		return len(ds) == 1 && ds[0].State == "delivered"
	})
	time.Sleep(100 * time.Millisecond)
	if res := e.tick(); res.Pruned != 1 {
		t.Errorf("tick pruned %d, want 1", res.Pruned)
	}
	if ds := decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, path, nil)).Items; len(ds) != 0 {
		t.Errorf("deliveries after pruning: %+v", ds)
	}
}

// Whatever a receiver answers, the attempt is marked: its answer is kept
// as text PostgreSQL takes.
func TestGarbageAnswerIsMarked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testConfig(true))
	rc := newReceiver(t, func(_ int, w http.ResponseWriter) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("bad\x00\xff\xfe answer " + strings.Repeat("x", 10000)))
	})
	h := e.hook(maint, ptr("~maint"), rc, nil)
	e.send(taskEvent(t, "~maint"))
	path := "/webhooks/" + h.ID.String() + "/deliveries"
	eventually(t, "the attempt marked", func() bool {
		ds := decode[struct{ Items []webhook.Delivery }](t, e.must(http.StatusOK, maint, http.MethodGet, path, nil)).Items
		return len(ds) == 1 && ds[0].Attempts == 1 && strings.HasPrefix(ds[0].Error, "HTTP 500: bad")
	})
}
