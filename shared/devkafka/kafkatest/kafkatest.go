// Package kafkatest is the Kafka of tests: one devkafka broker per test
// binary, publisher settings for it, topics of a test's own, and topics
// read back over the same sarama client production uses.
//
// Use it from TestMain, around pgtest.Main when the tests need databases
// too:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m, pgtest.Main) }
package kafkatest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/kafka"
)

// broker is the test binary's broker, set by Main before any test runs: a
// test binary has one TestMain, as in pgtest.
var broker *devkafka.Broker

// Main starts a broker for the whole test binary, runs the tests with run
// (m.Run when nil, or pgtest.Main), and closes the broker. A broker that
// does not start fails the binary before any test. Tests that stop the
// broker start one of their own with devkafka.Start.
func Main(m *testing.M, run func(*testing.M)) {
	var err error
	if broker, err = devkafka.Start(devkafka.Config{}); err != nil {
		fmt.Fprintln(os.Stderr, "kafkatest:", err)
		os.Exit(1)
	}
	if run == nil {
		run = func(m *testing.M) { m.Run() }
	}
	run(m)
	_ = broker.Close()
}

// Brokers is the bootstrap list of the broker Main started.
func Brokers() []string {
	if broker == nil {
		panic("kafkatest: call kafkatest.Main from TestMain before kafkatest.Brokers")
	}
	return broker.Brokers()
}

// Config is a publisher configuration for tests on brokers: the default
// topics, and timeouts, retries and cooldown short enough that a broker
// that is down shows within a test. Tests change what they measure.
func Config(brokers []string) kafka.Config {
	return kafka.Config{
		Brokers: brokers, TasksTopic: events.DefaultTasksTopic, ReportsTopic: events.DefaultReportsTopic,
		ClientID: "taskfn-test", Version: "2.8.0", DialTimeout: time.Second, ProduceTimeout: 5 * time.Second,
		Retries: 2, RetryBackoff: 50 * time.Millisecond, Cooldown: 200 * time.Millisecond,
	}
}

// Publisher is a publisher on cfg, closed when t ends.
func Publisher(t testing.TB, cfg kafka.Config) *kafka.Publisher {
	t.Helper()
	p, err := kafka.NewPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Topic is a topic of t's own on a shared broker: its name and a random
// suffix, so parallel tests and repeated runs never read each other's
// records.
func Topic(t testing.TB) string {
	return "test." + strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + "." + uuid.NewString()[:8]
}

// Records returns every record of topic up to the end of each partition as
// of the call, partition by partition in offset order; none if the topic
// does not exist. A partition that does not deliver its records within 30
// seconds fails the test.
func Records(t testing.TB, brokers []string, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil // never written
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if end == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				done = m.Offset >= end-1
			case <-timeout:
				pc.Close()
				t.Fatalf("%s partition %d: timed out before offset %d", topic, p, end-1)
			}
		}
		pc.Close()
	}
	return out
}

// Headers returns m's headers by name.
func Headers(m *sarama.ConsumerMessage) map[string]string {
	h := make(map[string]string, len(m.Headers))
	for _, rh := range m.Headers {
		h[string(rh.Key)] = string(rh.Value)
	}
	return h
}

// Produce writes evs to topic on brokers in CloudEvents binary mode, as a
// producer outside taskfn does (sdk-go's sarama binding), each under the
// record key key gives it, and waits for each to be acknowledged.
func Produce(t testing.TB, brokers []string, topic string, key func(event.Event) string, evs ...event.Event) {
	t.Helper()
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, ev := range evs {
		msg := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key(ev))}
		if err := kafka_sarama.WriteProducerMessage(context.Background(), binding.ToMessage(&ev), msg); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.SendMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
}
