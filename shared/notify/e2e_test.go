package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/devkafka/kafkatest"
	"github.com/taskfn/taskfn/shared/kafka"
	"github.com/taskfn/taskfn/shared/kafkasource"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/report"
	"github.com/taskfn/taskfn/shared/task"
)

// The end-to-end tests follow an event the whole way production does: a
// store writes it to the outbox and publishes it after commit through the
// real Kafka publisher, to the test binary's broker; a KafkaSource (the
// dev runner's stand-in) consumes the topic and POSTs each record to the
// notify sink over HTTP; the inbox and the SMTP server show the outcome.

// sources runs KafkaSource stand-ins for one test, sharing one registry
// that counts their deliveries.
type sources struct {
	t   *testing.T
	reg *prometheus.Registry
	m   *kafkasource.Metrics
}

func newSources(t *testing.T) *sources {
	reg := prometheus.NewRegistry()
	return &sources{t: t, reg: reg, m: kafkasource.NewMetrics(reg)}
}

// start runs a KafkaSource named name, in consumer group group, from topic
// to the sink at url, until the test ends. A new group starts from the
// oldest record, as a KafkaSource whose offsets were lost does.
func (s *sources) start(name, topic, group, url string) {
	s.t.Helper()
	src, err := kafkasource.New(kafkasource.Config{
		Name: name, Kafka: kafkatest.Config(kafkatest.Brokers()), Topic: topic, Group: group, Sink: url + "/",
		DeadLetterTopic: topic + ".dlq", Retry: 5, BackoffDelay: 100 * time.Millisecond, Timeout: 30 * time.Second,
	}, s.m, zerolog.Nop())
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = src.Run(ctx)
	}()
	// Runs before the sink's server closes (cleanups run last first).
	s.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// delivered waits until source name has delivered n records successfully,
// then checks that none was refused or dead-lettered.
func (s *sources) delivered(name string, n int) {
	s.t.Helper()
	count := func(result string) int {
		return int(metricstest.Value(s.t, s.reg, "taskfn_kafkasource_deliveries_total", "sink", name, "result", result))
	}
	deadline := time.Now().Add(60 * time.Second)
	for count(kafkasource.ResultSuccess) < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d of %d records delivered", name, count(kafkasource.ResultSuccess), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, bad, dead := count(kafkasource.ResultSuccess), count(kafkasource.ResultRejected)+count(kafkasource.ResultFailed),
		metricstest.Value(s.t, s.reg, "taskfn_kafkasource_dead_letters_total", "sink", name); got != n || bad != 0 || dead != 0 {
		s.t.Fatalf("%s: %d delivered (want %d), %d refused or failed, %v dead-lettered", name, got, n, bad, dead)
	}
}

// published checks that a store's writes reached Kafka after commit: no
// event waits in the outbox for the relay.
func published(t *testing.T, db *pg.DB) {
	t.Helper()
	if n, err := outbox.Pending(context.Background(), db.Primary); err != nil || n != 0 {
		t.Fatalf("%d events left in the outbox (%v): the publish after commit failed", n, err)
	}
}

// publisher is a real Kafka publisher on the test binary's broker.
func publisher(t *testing.T) *kafka.Publisher {
	t.Helper()
	return kafkatest.Publisher(t, kafkatest.Config(kafkatest.Brokers()))
}

// A status change made through the task store reaches the owner's inbox
// and mailbox once, however often its events are delivered: each record
// goes to the sink again when the relay re-publishes it (a lost
// published mark: the same event id, a new record) and again when a
// second consumer group reads the topic from the start (lost offsets).
func TestStatusChangeReachesInboxAndMailbox(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	inbox := env.inbox()
	remember(t, env.db, "alice", "alice@taskfn.test")
	topic := kafkatest.Topic(t)
	pub := publisher(t)
	tasks, err := task.NewStore(env.db, task.WithTopic(topic), task.WithPublisher(pub))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tk, err := tasks.Create(ctx, "alice", task.Task{Title: "Release 2.0", Status: task.StatusTodo, Priority: task.PriorityHigh, OwnerID: "alice", AssigneeID: ptr("bob")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tasks.Update(ctx, "bob", tk.ID, func(cur task.Task) (task.Task, error) {
		cur.Status = task.StatusDone
		return cur, nil
	}); err != nil {
		t.Fatal(err)
	}
	published(t, env.db)
	records := len(kafkatest.Records(t, kafkatest.Brokers(), topic))
	if records < 3 {
		t.Fatalf("%d records on the topic, want created, updated, status_changed", records)
	}

	src := newSources(t)
	src.start("notify", topic, "notify-"+topic, env.url)
	src.delivered("notify", records)

	// The relay sends every event again, as it does when the mark that
	// says an event was published is lost.
	if _, err := env.db.Primary.Exec(ctx, "UPDATE outbox SET published_at = NULL WHERE key = $1", tk.ID.String()); err != nil {
		t.Fatal(err)
	}
	if res, err := outbox.Relay(ctx, env.db.Primary, pub, 100); err != nil || res.Published != records {
		t.Fatalf("relay: %+v, %v; want %d events sent again", res, err, records)
	}
	src.delivered("notify", 2*records)
	// And a consumer group that lost its offsets reads it all once more.
	src.start("notify-again", topic, "notify-again-"+topic, env.url)
	src.delivered("notify-again", 2*records)

	status, body := inbox.call(t, "GET", "/notifications", inbox.issuer.Token(t, "alice", auth.RoleMember))
	p := decodePage(t, body)
	if status != 200 || len(p.Items) != 1 || p.Items[0].Summary != "bob moved “Release 2.0” from todo to done" || *p.Items[0].TaskID != tk.ID {
		t.Fatalf("alice's inbox: %d %s", status, body)
	}
	msgs := env.smtp.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "alice@taskfn.test" || !strings.Contains(msgs[0].Subject, "Release 2.0") {
		t.Errorf("emails: %+v", msgs)
	}
	// bob, the assignee, was told of the assignment when the task was
	// created, not of his own status change.
	_, body = inbox.call(t, "GET", "/notifications", inbox.issuer.Token(t, "bob", auth.RoleMember))
	if p := decodePage(t, body); len(p.Items) != 1 || p.Items[0].Summary != "alice assigned “Release 2.0” to you" {
		t.Errorf("bob's inbox: %s", body)
	}
}

// A report's requester is notified when it is done: the worker's
// report.completed, published after commit to the reports topic, through
// a KafkaSource, into the inbox, once for two deliveries.
func TestReportCompletionReachesRequester(t *testing.T) {
	t.Parallel()
	env := newSinkEnv(t)
	remember(t, env.db, "carol", "carol@taskfn.test")
	ctx := context.Background()
	topic := kafkatest.Topic(t)
	reports, err := report.NewStore(env.db, report.WithTopic(topic), report.WithPublisher(publisher(t)))
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := task.NewStore(env.db)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := report.NewWorker(reports, tasks, report.WorkerConfig{ChunkBytes: 1 << 20, Lease: time.Minute, BuildTimeout: time.Minute, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	r, err := reports.Create(ctx, report.Request{Kind: report.KindTasksExport, Format: report.FormatCSV}, "carol", &task.Scope{Projects: []string{"~carol"}, Assignee: "carol"}, report.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.Build(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	published(t, env.db)
	// report.requested (for build-report; notify lets it pass) and
	// report.completed.
	records := len(kafkatest.Records(t, kafkatest.Brokers(), topic))
	if records < 2 {
		t.Fatalf("%d records on the reports topic, want report.requested and report.completed", records)
	}
	src := newSources(t)
	for _, group := range []string{"notify-reports-", "notify-reports-again-"} {
		src.start(group, topic, group+topic, env.url)
		src.delivered(group, records)
	}

	page, err := env.store.List(ctx, notify.ListQuery{Recipient: "carol", Limit: 10})
	if err != nil || len(page.Items) != 1 || *page.Items[0].ReportID != r.ID {
		t.Fatalf("carol's inbox: %+v, %v", page, err)
	}
	if msgs := env.smtp.To("carol@taskfn.test"); len(msgs) != 1 {
		t.Errorf("%d emails to carol", len(msgs))
	}
}
