package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pgtest"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/webhook"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// DNS rebinding: a name that resolved to a public address when the
// webhook was registered resolves to loopback when it is delivered. The
// dial is refused after the lookup, nothing reaches the receiver, and
// the attempt is marked as a failure.
func TestRebindingRefusedAtDelivery(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(recv.Close)
	port := recv.URL[strings.LastIndex(recv.URL, ":")+1:]

	db := pgtest.New(t)
	sealer, err := webhook.NewSealer("dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktMzJieXQ=")
	if err != nil {
		t.Fatal(err)
	}
	store, err := webhook.NewStore(db, sealer, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	roles, err := project.OpenResolver(db, project.ResolverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhook.Config{Timeout: 2 * time.Second, RetryBase: time.Second, RetryMax: time.Minute, MaxAttempts: 5,
		DisableAfter: 50, Concurrency: 4, BatchSize: 10, Budget: 10 * time.Second, SinkWait: time.Second, DeliveryRetention: time.Hour}
	d, err := webhook.NewDeliverer(store, roles, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's policy (the zero WEBHOOK_INSECURE_LOOPBACK): https
	// only, no loopback; the dial is refused before any TLS.
	webhook.UseResolver(d, fakeDNS(t, [4]byte{127, 0, 0, 1}))

	owner := webhook.Owner{Subject: "o", Roles: []auth.Role{auth.RoleMember}}
	key := "~o"
	// Registered as if checked then: stored directly, the URL naming the
	// name that now resolves to loopback.
	u := (&url.URL{Scheme: "https", Host: "hooks.example.test:" + port, Path: "/x"}).String()
	created, err := store.Create(context.Background(), webhook.Webhook{Project: &key, URL: u, Types: []string{events.TaskCreated}, ContentMode: webhook.Structured, Enabled: true}, owner)
	if err != nil {
		t.Fatal(err)
	}
	ev := taskCloudEvent(t, key)
	raw, _ := ev.MarshalJSON()
	if _, err := store.Enqueue(context.Background(), []webhook.NewDelivery{{WebhookID: created.ID, EventID: ev.ID(), EventType: ev.Type(), Projects: []string{key}, Event: raw}}); err != nil {
		t.Fatal(err)
	}
	res, err := d.Run(context.Background())
	if err != nil || res.Retrying != 1 || hits.Load() != 0 {
		t.Fatalf("run %+v, %v; %d hits, want a retry and none", res, err, hits.Load())
	}
	ds, err := store.Deliveries(context.Background(), created.ID)
	if err != nil || len(ds) != 1 || !strings.Contains(ds[0].Error, "loopback") || ds[0].StatusCode != nil {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
}

func taskCloudEvent(t *testing.T, project string) event.Event {
	t.Helper()
	id := uuid.Must(uuid.NewV7())
	e, err := events.NewTaskEvent(events.DefaultTasksTopic, id, events.TaskCreatedData{Task: events.TaskSnapshot{ID: id, Project: project, OwnerID: "o"}})
	if err != nil {
		t.Fatal(err)
	}
	ce, err := e.CloudEvent()
	if err != nil {
		t.Fatal(err)
	}
	return ce
}
