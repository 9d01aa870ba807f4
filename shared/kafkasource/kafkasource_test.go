package kafkasource_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/kafkasource"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
)

// One broker for the package: joining a consumer group takes a second or
// two, so the cases run in parallel, each on its own topic and group.
func TestMain(m *testing.M) { kafkatest.Main(m, nil) }

func kafkaConfig() kafka.Config { return kafkatest.Config(kafkatest.Brokers()) }

// sink is an HTTP sink answering each event id with a scripted sequence of
// statuses (then 200), and recording every attempt.
type sink struct {
	mu       sync.Mutex
	script   map[string][]int
	attempts []attempt
}

type attempt struct {
	id     string
	at     time.Time
	status int
	header http.Header
	body   string
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 4096)
	n, _ := r.Body.Read(b)
	id := r.Header.Get("Ce-Id")
	s.mu.Lock()
	status := http.StatusOK
	if q := s.script[id]; len(q) > 0 {
		status, s.script[id] = q[0], q[1:]
	}
	s.attempts = append(s.attempts, attempt{id: id, at: time.Now(), status: status, header: r.Header.Clone(), body: string(b[:n])})
	s.mu.Unlock()
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "status %d", status)
}

func (s *sink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.attempts {
		out = append(out, a.id)
	}
	return out
}

func (s *sink) of(id string) []attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []attempt
	for _, a := range s.attempts {
		if a.id == id {
			out = append(out, a)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publish sends three events of one task (one partition, in order) and
// returns their ids.
func publish(t *testing.T, topic string) []string {
	t.Helper()
	p, err := kafka.NewPublisher(kafkaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	taskID := uuid.New()
	var ids []string
	for i := range 3 {
		now := time.Now().UTC()
		ev, err := events.NewTaskEvent(topic, taskID, events.TaskUpdatedData{Changed: []string{"title"}, Task: events.TaskSnapshot{
			ID: taskID, Title: fmt.Sprint("v", i), Status: "todo", Priority: "low", OwnerID: "o", Labels: []string{}, CreatedAt: now, UpdatedAt: now, Version: int64(i + 1),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID.String())
	}
	return ids
}

// committed is the group's committed offset of each partition of topic
// that has records, against the partition's end.
func committed(t *testing.T, topic, group string) (got, want map[int32]int64) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(kafkatest.Brokers(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		t.Fatal(err)
	}
	got, want = map[int32]int64{}, map[int32]int64{}
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		want[p] = end
		if b := res.GetBlock(topic, p); b != nil {
			got[p] = b.Offset
		}
	}
	return got, want
}

// deadLettered reads the records of the dead-letter topic, if it exists.
func deadLettered(t *testing.T, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	return kafkatest.Records(t, kafkatest.Brokers(), topic)
}

// The KafkaSource semantics, on the middle of three events of one task:
// what the sink answers decides retries and dead-lettering, the events
// after it still arrive in order, and offsets are committed past all.
func TestDelivery(t *testing.T) {
	t.Parallel()
	const backoff = 40 * time.Millisecond
	tests := []struct {
		name         string
		replies      []int // the sink's answers to the middle event's attempts, then 200
		wantAttempts int
		wantDLT      int // status on the dead letter; 0: not dead-lettered
	}{
		{"2xx", nil, 1, 0},
		{"5xx then success", []int{503, 500}, 3, 0},
		{"429 and 408 are retried", []int{429, 408}, 3, 0},
		{"5xx until retries run out", []int{503, 503, 503, 503, 503}, 4, 503},
		{"poison: 4xx dead-lettered at once", []int{400}, 1, 400},
		{"404 is not retried", []int{404}, 1, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := strings.NewReplacer(" ", "_", ":", "", ",", "").Replace(tt.name) + "." + uuid.NewString()[:8]
			topic, dlt, group := "test."+id, "test."+id+".dlq", "group."+id
			ids := publish(t, topic)
			sk := &sink{script: map[string][]int{ids[1]: tt.replies}}
			srv := httptest.NewServer(sk)
			defer srv.Close()

			reg := prometheus.NewRegistry()
			src, err := kafkasource.New(kafkasource.Config{
				Name: "sink-" + id, Kafka: kafkaConfig(), Topic: topic, Group: group, Sink: srv.URL,
				DeadLetterTopic: dlt, Retry: 3, BackoffDelay: backoff, Timeout: 2 * time.Second,
			}, kafkasource.NewMetrics(reg), zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()

			waitFor(t, 20*time.Second, "the last event", func() bool { return len(sk.of(ids[2])) > 0 })
			// Order: the first, the middle as often as tried, the last.
			want := []string{ids[0]}
			for range tt.wantAttempts {
				want = append(want, ids[1])
			}
			want = append(want, ids[2])
			if diff := cmp.Diff(want, sk.ids()); diff != "" {
				t.Errorf("attempts at the sink (-want +got):\n%s", diff)
			}
			// Exponential backoff between the attempts.
			as := sk.of(ids[1])
			for i := 1; i < len(as); i++ {
				if gap, min := as[i].at.Sub(as[i-1].at), backoff<<(i-1); gap < min {
					t.Errorf("retry %d after %v, want at least %v", i, gap, min)
				}
			}
			// A binary-mode CloudEvent, as KafkaSource sends it.
			h := sk.of(ids[0])[0].header
			if h.Get("Ce-Specversion") != "1.0" || h.Get("Ce-Type") != events.TaskUpdated || h.Get("Ce-Partitionkey") == "" || h.Get("Content-Type") != "application/json" {
				t.Errorf("sink got headers %v", h)
			}
			if h.Get("Ce-Kafkaoffset") != "" {
				t.Errorf("binding-only extension leaked to the sink: %v", h)
			}

			waitFor(t, 10*time.Second, "offsets committed", func() bool {
				got, want := committed(t, topic, group)
				return cmp.Equal(got, want)
			})
			dead := deadLettered(t, dlt)
			if tt.wantDLT == 0 {
				if len(dead) != 0 {
					t.Errorf("%d dead letters, want none", len(dead))
				}
			} else {
				if len(dead) != 1 {
					t.Fatalf("%d dead letters, want 1", len(dead))
				}
				dh := kafkatest.Headers(dead[0])
				data, _ := base64.StdEncoding.DecodeString(dh["ce_knativeerrordata"])
				if dh["ce_id"] != ids[1] || dh["ce_knativeerrorcode"] != fmt.Sprint(tt.wantDLT) || dh["ce_knativeerrordest"] != srv.URL || string(data) != fmt.Sprint("status ", tt.wantDLT) {
					t.Errorf("dead letter headers %v (data %q)", dh, data)
				}
			}
			name := "sink-" + id
			if got := metricstest.Value(t, reg, "taskfn_kafkasource_deliveries_total", "sink", name); got != float64(tt.wantAttempts+2) {
				t.Errorf("deliveries_total %v, want %d", got, tt.wantAttempts+2)
			}
			wantDead := 0.0
			if tt.wantDLT != 0 {
				wantDead = 1
			}
			if got := metricstest.Value(t, reg, "taskfn_kafkasource_dead_letters_total", "sink", name); got != wantDead {
				t.Errorf("dead_letters_total %v, want %v", got, wantDead)
			}
		})
	}
}

// A record that is no CloudEvent can never be delivered: dead-lettered.
func TestNotACloudEventIsDeadLettered(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()[:8]
	topic, dlt := "test.raw."+id, "test.raw."+id+".dlq"
	sc, _ := kafkaConfig().Sarama()
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(kafkatest.Brokers(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("plain")}); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	sk := &sink{}
	srv := httptest.NewServer(sk)
	defer srv.Close()
	src, err := kafkasource.New(kafkasource.Config{
		Name: "raw", Kafka: kafkaConfig(), Topic: topic, Group: "group.raw." + id, Sink: srv.URL,
		DeadLetterTopic: dlt, Retry: 3, BackoffDelay: time.Millisecond, Timeout: time.Second,
	}, kafkasource.NewMetrics(prometheus.NewRegistry()), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var dead []*sarama.ConsumerMessage
	waitFor(t, 20*time.Second, "the dead letter", func() bool { dead = deadLettered(t, dlt); return len(dead) == 1 })
	if string(dead[0].Value) != "plain" || len(sk.ids()) != 0 {
		t.Errorf("dead letter %q, sink attempts %d", dead[0].Value, len(sk.ids()))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	good := kafkasource.Config{Name: "n", Kafka: kafkaConfig(), Topic: "t", Group: "g", Sink: "http://x", Retry: 1, BackoffDelay: time.Millisecond, Timeout: time.Second}
	tests := []struct {
		name   string
		change func(*kafkasource.Config)
	}{
		{"no sink", func(c *kafkasource.Config) { c.Sink = "" }},
		{"no group", func(c *kafkasource.Config) { c.Group = "" }},
		{"negative retry", func(c *kafkasource.Config) { c.Retry = -1 }},
		{"no backoff", func(c *kafkasource.Config) { c.BackoffDelay = 0 }},
		{"no brokers", func(c *kafkasource.Config) { c.Kafka.Brokers = nil }},
	}
	m := kafkasource.NewMetrics(prometheus.NewRegistry())
	if _, err := kafkasource.New(good, m, zerolog.Nop()); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.change(&c)
			if _, err := kafkasource.New(c, m, zerolog.Nop()); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// PingSource: a dev.knative.sources.ping event every interval, with its
// data; a failed tick is retried.
func TestPing(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		ticks  []http.Header
		bodies []string
		fail   = true
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		mu.Lock()
		defer mu.Unlock()
		ticks = append(ticks, r.Header.Clone())
		bodies = append(bodies, string(b[:n]))
		if fail {
			fail = false
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- kafkasource.Ping(ctx, kafkasource.PingConfig{
			Name: "relay-tick", Sink: srv.URL, Interval: 50 * time.Millisecond, Data: `{"batch":1}`,
			Retry: 2, BackoffDelay: 5 * time.Millisecond, Timeout: time.Second,
		}, kafkasource.NewMetrics(prometheus.NewRegistry()), zerolog.Nop())
	}()
	waitFor(t, 5*time.Second, "three ticks", func() bool { mu.Lock(); defer mu.Unlock(); return len(ticks) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// The first tick failed and was retried: same event id twice.
	if ticks[0].Get("Ce-Id") != ticks[1].Get("Ce-Id") || ticks[1].Get("Ce-Id") == ticks[2].Get("Ce-Id") {
		t.Errorf("tick ids %s %s %s: want the first retried, then a new tick", ticks[0].Get("Ce-Id"), ticks[1].Get("Ce-Id"), ticks[2].Get("Ce-Id"))
	}
	for i, h := range ticks {
		if h.Get("Ce-Type") != events.PingSourceType || h.Get("Ce-Source") != "/apis/v1/namespaces/dev/pingsources/relay-tick" || bodies[i] != `{"batch":1}` {
			t.Errorf("tick %d: headers %v body %q", i, h, bodies[i])
		}
	}
}
