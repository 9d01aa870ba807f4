package kafka_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/kafka"
)

func TestMain(m *testing.M) { kafkatest.Main(m, nil) }

// testConfig is kafkatest's with a cooldown longer than any test, so that
// every publish after a failure meets it.
func testConfig(brokers []string) kafka.Config {
	cfg := kafkatest.Config(brokers)
	cfg.RetryBackoff, cfg.Cooldown = 20*time.Millisecond, time.Minute
	return cfg
}

// A published event is a binary-mode CloudEvent: attributes in ce_
// headers, the JSON data as the value, the task id as the key.
func TestPublishBinaryMode(t *testing.T) {
	t.Parallel()
	p := kafkatest.Publisher(t, testConfig(kafkatest.Brokers()))
	topic := kafkatest.Topic(t)
	task := eventstest.Snapshot()
	ev, err := events.NewTaskEvent(topic, task.ID, events.TaskCreatedData{Actor: "alice", Task: task})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	recs := kafkatest.Records(t, kafkatest.Brokers(), topic)
	if len(recs) != 1 {
		t.Fatalf("%d records on %s, want 1", len(recs), topic)
	}
	m := recs[0]
	h := kafkatest.Headers(m)
	want := map[string]string{
		"ce_specversion": "1.0", "ce_id": ev.ID.String(), "ce_type": events.TaskCreated,
		"ce_source": events.SourceTasks, "ce_subject": task.ID.String(), "ce_partitionkey": task.ID.String(),
		"content-type": "application/json", "ce_time": ev.Time.Format(time.RFC3339Nano),
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("header %s = %q, want %q", k, h[k], v)
		}
	}
	if string(m.Key) != task.ID.String() {
		t.Errorf("key %q, want the task id", m.Key)
	}
	if err := eventstest.Validate(h["ce_type"], m.Value); err != nil {
		t.Error(err)
	}
}

// Kafka unreachable: ErrUnavailable, and for the cooldown every further
// publish fails at once instead of waiting out the retries: it does not
// even connect. The broker is a listener that hangs up on every
// connection, so the attempts are counted, not timed.
func TestPublishUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var dials atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	p := kafkatest.Publisher(t, testConfig([]string{ln.Addr().String()}))
	ev, _ := events.NewTaskEvent("t", uuid.New(), events.TaskDeletedData{Task: eventstest.Snapshot()})
	for i, cause := range []error{sarama.ErrOutOfBrokers, events.ErrCoolingDown} {
		before := dials.Load()
		err := p.Publish(t.Context(), ev)
		if !errors.Is(err, events.ErrUnavailable) {
			t.Fatalf("publish %d: %v, want ErrUnavailable", i, err)
		}
		// The cause stays visible to errors.Is: sarama's, then the cooldown.
		if !errors.Is(err, cause) {
			t.Errorf("publish %d: %v, want it to wrap %v", i, err, cause)
		}
		switch n := dials.Load() - before; {
		case i == 0 && n == 0:
			t.Errorf("publish %d: no connection attempted", i)
		case i == 1 && n != 0:
			t.Errorf("publish %d, during the cooldown: %d connections attempted", i, n)
		}
	}
}

// An event Kafka can never take fails alone: no cooldown for the others.
func TestPublishRejected(t *testing.T) {
	t.Parallel()
	p := kafkatest.Publisher(t, testConfig(kafkatest.Brokers()))
	topic := kafkatest.Topic(t)
	task := eventstest.Snapshot()
	task.Description = strings.Repeat("x", 2<<20) // over the 1 MiB record limit
	big, _ := events.NewTaskEvent(topic, task.ID, events.TaskCreatedData{Task: task})
	err := p.Publish(t.Context(), big)
	if !errors.Is(err, events.ErrRejected) {
		t.Fatalf("big event: %v, want ErrRejected", err)
	}
	var ce sarama.ConfigurationError
	if !errors.As(err, &ce) && !errors.Is(err, sarama.ErrMessageSizeTooLarge) {
		t.Errorf("big event: %v, want it to wrap sarama's error", err)
	}
	small, _ := events.NewTaskEvent(topic, task.ID, events.TaskCreatedData{Task: eventstest.Snapshot()})
	if err := p.Publish(t.Context(), small); err != nil {
		t.Fatalf("next event: %v", err)
	}
}

func TestPublishAfterClose(t *testing.T) {
	t.Parallel()
	p := kafkatest.Publisher(t, testConfig(kafkatest.Brokers()))
	_ = p.Close()
	ev, _ := events.NewTaskEvent(kafkatest.Topic(t), uuid.New(), events.TaskDeletedData{Task: eventstest.Snapshot()})
	if err := p.Publish(context.Background(), ev); err == nil {
		t.Fatal("publish after Close succeeded")
	}
}

// A broker that accepts connections and never answers (a network
// partition) costs a publish no more than its context allows.
func TestPublishGivesUpWithContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	p := kafkatest.Publisher(t, testConfig([]string{ln.Addr().String()}))
	// Cleanups run last first: hanging up lets the abandoned send end
	// before the publisher closes.
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	ev, _ := events.NewTaskEvent("t", uuid.New(), events.TaskDeletedData{Task: eventstest.Snapshot()})
	start := time.Now()
	if err := p.Publish(ctx, ev); !errors.Is(err, events.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish: %v, want ErrUnavailable wrapping the context's end", err)
	}
	// A send waits for a reply up to the read timeout (30 s at least):
	// far beyond this bound, which only a busy machine approaches.
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("publish took %v despite a 200ms context", d)
	}
	if err := p.Publish(t.Context(), ev); !errors.Is(err, events.ErrCoolingDown) {
		t.Errorf("next publish: %v, want ErrCoolingDown", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := kafka.Config{
		Brokers: []string{"127.0.0.1:9092"}, TasksTopic: "a", ReportsTopic: "b", Version: "2.8.0",
		DialTimeout: time.Second, ProduceTimeout: time.Second, Retries: 3, RetryBackoff: time.Millisecond,
	}
	tests := []struct {
		name   string
		change func(*kafka.Config)
		ok     bool
	}{
		{"good", func(*kafka.Config) {}, true},
		{"no brokers", func(c *kafka.Config) { c.Brokers = nil }, false},
		{"no topic", func(c *kafka.Config) { c.TasksTopic = "" }, false},
		{"bad version", func(c *kafka.Config) { c.Version = "two" }, false},
		{"no retries", func(c *kafka.Config) { c.Retries = 0 }, false},
		{"zero timeout", func(c *kafka.Config) { c.ProduceTimeout = 0 }, false},
		{"negative cooldown", func(c *kafka.Config) { c.Cooldown = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tt.change(&c)
			_, err := kafka.NewPublisher(c)
			if (err == nil) != tt.ok {
				t.Errorf("NewPublisher: %v, want ok=%t", err, tt.ok)
			}
		})
	}
}

// The environment names and defaults, as a function loads them.
func TestConfigFromEnvironment(t *testing.T) {
	t.Setenv("KAFKA_BROKERS", "k1:9092,k2:9092")
	t.Setenv("KAFKA_TASKS_TOPIC", "prod.tasks")
	var cfg kafka.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	want := kafka.Config{
		Brokers: []string{"k1:9092", "k2:9092"}, TasksTopic: "prod.tasks", ReportsTopic: events.DefaultReportsTopic,
		ClientID: "taskfn", Version: "2.8.0", DialTimeout: 5 * time.Second, ProduceTimeout: 10 * time.Second,
		Retries: 3, RetryBackoff: 250 * time.Millisecond, Cooldown: 5 * time.Second,
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := cfg.Validate(); err != nil {
		t.Error(err)
	}
}
