package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/taskfn/taskfn/shared/events"
)

// Webhooks out through the whole dev system: a task created through the
// API goes outbox → the embedded Kafka → the deliver-webhooks
// KafkaSource stand-in → a loopback receiver, as a CloudEvent the
// official Standard Webhooks library verifies, once.
func TestWebhooksEndToEnd(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		secret string
		got    []error
		ids    []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		wh, err := standardwebhooks.NewWebhook(secret)
		if err == nil {
			err = wh.Verify(body, r.Header)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if ev, e := cehttp.NewEventFromHTTPRequest(r); e == nil && ev.Type() == events.TaskCreated {
			ids = append(ids, ev.ID())
		}
		got = append(got, err)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(recv.Close)
	base := startDev(t, nil)
	carol := token(t, base, "carol", "carol", 200)
	hook := call(t, base, "POST", "/webhooks", carol,
		`{"url":"`+recv.URL+`/hook","types":["`+events.TaskCreated+`"],"project":"~`+subject(t, carol)+`"}`, 201)
	mu.Lock()
	secret = hook["secret"].(string)
	mu.Unlock()
	call(t, base, "POST", "/tasks", carol, `{"title":"Tell the receiver"}`, 201)
	eventually(t, func() (map[string]any, bool) {
		mu.Lock()
		defer mu.Unlock()
		return map[string]any{"posts": len(got)}, len(ids) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	for _, err := range got {
		if err != nil {
			t.Errorf("the official verifier refuses a delivery: %v", err)
		}
	}
	page := call(t, base, "GET", "/webhooks/"+hook["id"].(string)+"/deliveries", carol, "", 200)
	if items := page["items"].([]any); len(items) != 1 || items[0].(map[string]any)["state"] != "delivered" {
		t.Errorf("deliveries %v", items)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !bytes.Contains(metrics, []byte(`taskfn_webhook_attempts_total{result="delivered"} 1`)) {
		t.Errorf("/metrics does not count the delivery")
	}
}
