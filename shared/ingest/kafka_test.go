package ingest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/kafkasource"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/task"
)

const kafkaSource = "/ci/deploys"

var kafkaProducers = ingest.Producers{kafkaSource: {Subject: "svc-deploys", Roles: []auth.Role{auth.RoleMember}, Projects: []string{"ops"}}}

// byRef keys a command by its externalref (or id), as producers should:
// one ref's commands stay in order.
func byRef(ev event.Event) string {
	if ref, ok := ev.Extensions()[events.ExtExternalRef].(string); ok {
		return ref
	}
	return ev.ID()
}

// source runs a KafkaSource stand-in from topic to the sink, in group,
// with a sender token, until t ends; its registry counts its deliveries.
func (e *env) source(t *testing.T, topic, group string) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	src, err := kafkasource.New(kafkasource.Config{
		Name: "ingest-events", Kafka: kafkatest.Config(kafkatest.Brokers()), Topic: topic, Group: group, Sink: e.url + ingest.SinkPath,
		DeadLetterTopic: topic + ".dlq", Retry: 3, BackoffDelay: 50 * time.Millisecond, Timeout: 30 * time.Second,
		Token: func(context.Context) (string, error) {
			return e.senders.Token(t, "ingest-events", "kafkasource", auth.DefaultAudience(ingest.Name)), nil
		},
	}, kafkasource.NewMetrics(reg), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return reg
}

// await waits until the source of reg has delivered ok records and
// dead-lettered dead ones.
func await(t *testing.T, reg *prometheus.Registry, ok, dead int) {
	t.Helper()
	get := func() (int, int) {
		return int(metricstest.Value(t, reg, "taskfn_kafkasource_deliveries_total", "sink", "ingest-events", "result", kafkasource.ResultSuccess)),
			int(metricstest.Value(t, reg, "taskfn_kafkasource_dead_letters_total", "sink", "ingest-events"))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		gotOK, gotDead := get()
		if gotOK == ok && gotDead == dead {
			return
		}
		if gotOK > ok || gotDead > dead || time.Now().After(deadline) {
			t.Fatalf("%d delivered and %d dead-lettered, want %d and %d", gotOK, gotDead, ok, dead)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rejected returns the rejected events in the outbox.
func (e *env) rejected(t *testing.T) []events.CommandRejectedData {
	t.Helper()
	rows, err := e.db.Primary.Query(context.Background(), "SELECT data FROM outbox WHERE type = $1 ORDER BY id", events.CommandRejected)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.CommandRejectedData
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		if err := eventstest.Validate(events.CommandRejected, b); err != nil {
			t.Errorf("rejected event %s: %v", b, err)
		}
		var d events.CommandRejectedData
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Commands from Kafka act as the identity their source maps to, once
// however often delivered and in their key's order; a command that can
// never succeed (unknown source, no rights, invalid) becomes one rejected
// event and a dead letter, again only once however often delivered.
func TestKafkaPath(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, kafkaProducers)
	topic := kafkatest.Topic(t)
	from := func(ev event.Event, source string) event.Event {
		ev.SetSource(source)
		return ev
	}
	ref := "deploy:" + uuid.NewString()[:8]
	create := from(command(t, events.CommandTaskCreate, ref, map[string]any{"title": "Deploy 2.4 to prod"}), kafkaSource)
	update := from(command(t, events.CommandTaskUpdate, ref, map[string]any{"expected_version": 1, "patch": map[string]any{"status": "in_progress"}}), kafkaSource)
	unknown := from(command(t, events.CommandTaskCreate, "", map[string]any{"title": "Who am I"}), "/somebody/else")
	noRights := from(command(t, events.CommandTaskCreate, "", map[string]any{"title": "Not my project", "project": "web"}), kafkaSource)
	invalid := from(command(t, events.CommandTaskCreate, "", map[string]any{"title": ""}), kafkaSource)
	kafkatest.Produce(t, kafkatest.Brokers(), topic, byRef, create, create, update, unknown, noRights, invalid)

	reg := e.source(t, topic, "ingest-"+topic)
	await(t, reg, 3, 3)

	var id string
	if err := e.db.Primary.QueryRow(context.Background(), "SELECT task_id::text FROM command_refs WHERE producer = 'svc-deploys' AND ref = $1", ref).Scan(&id); err != nil {
		t.Fatal(err)
	}
	got := e.task(uuid.MustParse(id))
	if e.count("tasks") != 1 || got.OwnerID != "svc-deploys" || got.Status != task.StatusInProgress || got.Version != 2 {
		t.Fatalf("%d tasks; %+v", e.count("tasks"), got)
	}
	rej := e.rejected(t)
	want := map[string]int{unknown.ID(): 403, noRights.ID(): 422, invalid.ID(): 422}
	if len(rej) != len(want) {
		t.Fatalf("%d rejected events, want %d: %+v", len(rej), len(want), rej)
	}
	for _, r := range rej {
		if want[r.Command.ID] != r.Status || r.Reason == "" {
			t.Errorf("rejected %+v, want status %d", r, want[r.Command.ID])
		}
	}
	if dl := kafkatest.Records(t, kafkatest.Brokers(), topic+".dlq"); len(dl) != 3 {
		t.Errorf("%d dead letters, want 3", len(dl))
	}

	// A consumer group that lost its offsets reads everything again:
	// nothing more happens, and no second rejected event is sent.
	again := e.source(t, topic, "ingest-again-"+topic)
	await(t, again, 3, 3)
	if n := len(e.rejected(t)); n != 3 {
		t.Errorf("%d rejected events after redelivery, want 3", n)
	}
	if got := e.task(uuid.MustParse(id)); got.Version != 2 || e.count("tasks") != 1 {
		t.Errorf("redelivery changed the task: v%d, %d tasks", got.Version, e.count("tasks"))
	}
}

// Only Knative's sources reach the sink: a delivery without a sender
// token is refused before anything is read.
func TestKafkaSinkNeedsSender(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, kafkaProducers)
	ev := command(t, events.CommandTaskCreate, "", map[string]any{"title": "forged"})
	ev.SetSource(kafkaSource)
	// Not through e.send: /kafka is no public route, and not in openapi.yaml.
	req, err := http.NewRequest(http.MethodPost, e.url+ingest.SinkPath, strings.NewReader(structuredBody(t, ev)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+e.token(manager, auth.RoleManager))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("%d, want 401", resp.StatusCode)
	}
	if n := e.count("tasks"); n != 0 {
		t.Errorf("%d tasks", n)
	}
}

// A producers setting that cannot be right stops the function at start.
func TestProducersConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"empty", "", true},
		{"one", `{"/ci": {"subject": "svc-ci", "roles": ["task-member"], "projects": ["ops"]}}`, true},
		{"unknown role", `{"/ci": {"subject": "svc-ci", "roles": ["root"]}}`, false},
		{"no subject", `{"/ci": {"roles": ["task-member"]}}`, false},
		{"bad project", `{"/ci": {"subject": "svc-ci", "projects": ["Ops!"]}}`, false},
		{"unknown member", `{"/ci": {"subject": "svc-ci", "role": "task-member"}}`, false},
		{"not JSON", `/ci=svc-ci`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p ingest.Producers
			if err := p.Decode(tt.value); (err == nil) != tt.ok {
				t.Errorf("Decode(%q): %v", tt.value, err)
			}
		})
	}
}
