package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// Config is the Kafka part of a function's configuration.
type Config struct {
	// Brokers is a comma-separated list of host:port. The dev runner starts
	// an embedded broker when it is empty; everything else needs it.
	Brokers      []string `envconfig:"KAFKA_BROKERS"`
	TasksTopic   string   `envconfig:"KAFKA_TASKS_TOPIC" default:"taskfn.tasks"`
	ReportsTopic string   `envconfig:"KAFKA_REPORTS_TOPIC" default:"taskfn.reports"`
	ClientID     string   `envconfig:"KAFKA_CLIENT_ID" default:"taskfn"`
	// Version is the oldest Kafka version the cluster runs; sarama picks
	// request versions by it. 2.8 has everything used here.
	Version     string        `envconfig:"KAFKA_VERSION" default:"2.8.0"`
	DialTimeout time.Duration `envconfig:"KAFKA_DIAL_TIMEOUT" default:"5s"`
	// ProduceTimeout is how long the leader waits for the in-sync replicas
	// to acknowledge (acks=all).
	ProduceTimeout time.Duration `envconfig:"KAFKA_PRODUCE_TIMEOUT" default:"10s"`
	// Retries and RetryBackoff bound how long one publish keeps trying
	// before the event is left in the outbox for the relay.
	Retries      int           `envconfig:"KAFKA_PRODUCE_RETRIES" default:"3"`
	RetryBackoff time.Duration `envconfig:"KAFKA_RETRY_BACKOFF" default:"250ms"`
	// Cooldown: after Kafka proved unreachable, publishes fail at once for
	// this long instead of each write waiting out the retries again.
	Cooldown time.Duration `envconfig:"KAFKA_COOLDOWN" default:"5s"`
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("KAFKA_BROKERS is empty"))
	}
	if c.TasksTopic == "" || c.ReportsTopic == "" {
		errs = append(errs, errors.New("topics must not be empty"))
	}
	if _, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		errs = append(errs, fmt.Errorf("KAFKA_VERSION: %w", err))
	}
	if c.DialTimeout <= 0 || c.ProduceTimeout <= 0 || c.RetryBackoff <= 0 {
		errs = append(errs, errors.New("timeouts and backoff must be positive"))
	}
	if c.Retries < 1 {
		errs = append(errs, errors.New("KAFKA_PRODUCE_RETRIES must be at least 1 (the idempotent producer needs retries)"))
	}
	if c.Cooldown < 0 {
		errs = append(errs, errors.New("KAFKA_COOLDOWN must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka: invalid config: %w", err)
	}
	return nil
}

// Sarama returns the client settings producers and consumers share:
// version, client id, network timeouts and metadata retries.
func (c Config) Sarama() (*sarama.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	sc := sarama.NewConfig()
	sc.Version, _ = sarama.ParseKafkaVersion(c.Version)
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = c.DialTimeout
	// A produce response may take the whole ProduceTimeout; reading it must
	// not time out first.
	sc.Net.ReadTimeout = max(sc.Net.ReadTimeout, c.ProduceTimeout+5*time.Second)
	sc.Metadata.Retry.Max = c.Retries
	sc.Metadata.Retry.Backoff = c.RetryBackoff
	return sc, nil
}

// producerConfig is Sarama with the settings that make publishing
// exactly-once per send and ordered per partition: an idempotent producer
// (the broker drops a retried batch it already has), acknowledged by all
// in-sync replicas, one request in flight per broker so a retry can never
// overtake the batch after it.
func (c Config) producerConfig() (*sarama.Config, error) {
	sc, err := c.Sarama()
	if err != nil {
		return nil, err
	}
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Timeout = c.ProduceTimeout
	sc.Producer.Retry.Max = c.Retries
	sc.Producer.Retry.Backoff = c.RetryBackoff
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: producer config: %w", err)
	}
	return sc, nil
}
