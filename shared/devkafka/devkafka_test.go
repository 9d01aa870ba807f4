package devkafka_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/taskfn/taskfn/shared/devkafka"
)

// send produces one record with an idempotent producer of its own.
func send(brokers []string, topic, v string) error {
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	sc.Producer.Return.Successes = true
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 1
	sc.Producer.Retry.Backoff = 10 * time.Millisecond
	sc.Metadata.Retry.Max = 1
	sc.Metadata.Retry.Backoff = 10 * time.Millisecond
	p, err := sarama.NewSyncProducer(brokers, sc)
	if err != nil {
		return err
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(v)})
	return err
}

// Stopped, the broker refuses connections; started again it is on the same
// port with its topics and records, and its seeded topic has the asked
// partitions.
func TestStopStartKeepsState(t *testing.T) {
	t.Parallel()
	b, err := devkafka.Start(devkafka.Config{Topics: []string{"seeded"}, Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	addr := b.Addr()
	steps := []struct {
		name    string
		before  func() error
		wantErr bool
	}{
		{"running", func() error { return nil }, false},
		{"stopped", func() error { b.Stop(); return nil }, true},
		{"started again", b.Start, false},
		{"started twice", b.Start, false},
	}
	var sent []string
	for i, s := range steps {
		if err := s.before(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if b.Addr() != addr {
			t.Fatalf("%s: address %s, want %s", s.name, b.Addr(), addr)
		}
		v := fmt.Sprint(i)
		err := send(b.Brokers(), "seeded", v)
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: send: %v, want error %t", s.name, err, s.wantErr)
		}
		if err == nil {
			sent = append(sent, v)
		}
	}
	sc := sarama.NewConfig()
	sc.Version = sarama.V2_8_0_0
	c, err := sarama.NewClient(b.Brokers(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts, err := c.Partitions("seeded")
	if err != nil || len(parts) != 4 {
		t.Fatalf("partitions %v, %v: want 4", parts, err)
	}
	var total int64
	for _, p := range parts {
		n, err := c.GetOffset("seeded", p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != int64(len(sent)) {
		t.Errorf("%d records kept, want %d (%v)", total, len(sent), sent)
	}
}

func TestStartOnTakenPortFails(t *testing.T) {
	t.Parallel()
	a, err := devkafka.Start(devkafka.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var port int
	fmt.Sscanf(a.Addr(), "127.0.0.1:%d", &port)
	if b, err := devkafka.Start(devkafka.Config{Port: port}); err == nil {
		b.Close()
		t.Fatal("second broker on the same port started")
	}
}
