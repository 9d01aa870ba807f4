// Package kafkatest reads topics back for tests that publish to Kafka (the
// devkafka broker or any other), over the same sarama client production
// uses.
package kafkatest

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
)

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
