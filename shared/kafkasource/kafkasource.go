// Package kafkasource stands in, for the dev runner and tests, for the two
// Knative event sources that trigger taskfn's event functions: KafkaSource
// (Source: a consumer group on a topic that POSTs each record to a sink as
// a CloudEvent) and PingSource (Ping: a tick on a timer). Never deployed:
// in a cluster the real sources do this.
//
// Delivery follows a KafkaSource with a delivery spec: a 2xx reply
// completes the record and its offset is committed; a 4xx other than 408
// and 429 says the event can never succeed, so it goes to the dead-letter
// topic at once; 5xx, 408, 429 and transport errors are retried with
// exponential backoff (BackoffDelay × 2^n) up to Retry times and then
// dead-lettered. Records of one partition are delivered one at a time, in
// order, so a retried record holds its partition back; other partitions
// go on.
package kafkasource

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/kafka"
)

// Config is one KafkaSource.
type Config struct {
	Name  string // names the sink in metrics and logs
	Kafka kafka.Config
	Topic string
	Group string // consumer group id: its committed offsets are where a restart resumes
	Sink  string // URL the events are POSTed to
	// DeadLetterTopic receives what cannot be delivered; empty drops it
	// (logged), as a KafkaSource without a dead-letter sink does.
	DeadLetterTopic string
	Retry           int           // retries after the first attempt
	BackoffDelay    time.Duration // before the first retry; doubles each time
	Timeout         time.Duration // per attempt
	// Token, when set, gives the sender-identity token each delivery
	// carries as "Authorization: Bearer" (Knative's authentication-oidc:
	// the sinks refuse deliveries without one).
	Token func(ctx context.Context) (string, error)
}

func (c Config) validate() error {
	var errs []error
	if c.Name == "" || c.Topic == "" || c.Group == "" || c.Sink == "" {
		errs = append(errs, errors.New("name, topic, group and sink are required"))
	}
	if c.Retry < 0 || c.BackoffDelay <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("retry must not be negative, backoff and timeout must be positive"))
	}
	if err := c.Kafka.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafkasource %q: %w", c.Name, err)
	}
	return nil
}

// Metrics are the stand-ins' instruments, shared by every source in a
// process.
type Metrics struct {
	deliveries  *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
}

// Delivery results, the result label of taskfn_kafkasource_deliveries_total.
const (
	ResultSuccess  = "success"  // 2xx
	ResultRejected = "rejected" // 4xx other than 408/429, or not a CloudEvent: never retried
	ResultFailed   = "failed"   // 5xx, 408, 429 or no reply: retried
)

// NewMetrics registers the instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskfn_kafkasource_deliveries_total",
			Help: "Delivery attempts to a sink, by sink and result (success, rejected, failed).",
		}, []string{"sink", "result"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskfn_kafkasource_dead_letters_total",
			Help: "Events given up on and sent to the dead-letter topic (or dropped without one), by sink.",
		}, []string{"sink"}),
	}
	reg.MustRegister(m.deliveries, m.deadLetters)
	return m
}

// Source is a running KafkaSource stand-in.
type Source struct {
	cfg    Config
	m      *Metrics
	log    zerolog.Logger
	client *http.Client
}

// New returns a source; Run starts it.
func New(cfg Config, m *Metrics, log zerolog.Logger) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("kafkasource: metrics are required")
	}
	return &Source{
		cfg:    cfg,
		m:      m,
		log:    log.With().Str("kafkasource", cfg.Name).Str("topic", cfg.Topic).Logger(),
		client: &http.Client{Timeout: cfg.Timeout},
	}, nil
}

// Run consumes until ctx ends, then leaves the group, committing what was
// delivered. Kafka being unreachable is retried, not returned.
func (s *Source) Run(ctx context.Context) error {
	sc, err := s.cfg.Kafka.Sarama()
	if err != nil {
		return err
	}
	// A source created after events were written must still see them.
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Return.Errors = true
	group, err := connect(ctx, s.log, func() (sarama.ConsumerGroup, error) {
		return sarama.NewConsumerGroup(s.cfg.Kafka.Brokers, s.cfg.Group, sc)
	})
	if err != nil {
		return nil // ctx ended before Kafka could be reached
	}
	defer group.Close()
	var dlq *deadLetters
	if s.cfg.DeadLetterTopic != "" {
		dlq = &deadLetters{cfg: s.cfg.Kafka, topic: s.cfg.DeadLetterTopic, log: s.log}
		defer dlq.close()
	}
	go func() {
		for err := range group.Errors() {
			s.log.Warn().Err(err).Msg("consumer group")
		}
	}()
	h := &handler{s: s, dlq: dlq}
	for ctx.Err() == nil {
		// Consume returns at every rebalance; join again.
		if err := group.Consume(ctx, []string{s.cfg.Topic}, h); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("consume; retrying")
			sleep(ctx, s.cfg.BackoffDelay)
		}
	}
	return nil
}

// connect retries open until it succeeds or ctx ends (its error then).
func connect[T any](ctx context.Context, log zerolog.Logger, open func() (T, error)) (T, error) {
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		v, err := open()
		if err == nil {
			return v, nil
		}
		log.Warn().Err(err).Msg("kafka not reachable; retrying")
		if !sleep(ctx, delay) {
			return v, ctx.Err()
		}
	}
}

// sleep waits d or until ctx ends, reporting whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type handler struct {
	s   *Source
	dlq *deadLetters
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim delivers one partition's records in order, each before the
// next, and marks a record for commit only once it is done with.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if err := h.s.handle(ctx, msg, h.dlq); err != nil {
				// The session ended mid-delivery (rebalance, shutdown): not
				// marked, so the partition's next owner delivers it again.
				return nil
			}
			sess.MarkMessage(msg, "")
		case <-ctx.Done():
			return nil
		}
	}
}

// handle delivers msg with retries and dead-letters it if that fails; it
// returns an error only when ctx ended first.
func (s *Source) handle(ctx context.Context, msg *sarama.ConsumerMessage, dlq *deadLetters) error {
	d := s.deliver(ctx, kafkaMessage(msg))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if d.result == ResultSuccess {
		return nil
	}
	if dlq != nil {
		if err := dlq.send(ctx, msg, s.cfg.Sink, d); err != nil {
			return err
		}
	}
	s.m.deadLetters.WithLabelValues(s.cfg.Name).Inc()
	log := s.log.Warn().Int32("partition", msg.Partition).Int64("offset", msg.Offset).
		Int("status", d.status).AnErr("cause", d.err).Str("event.id", header(msg, "ce_id"))
	if dlq == nil {
		log.Msg("undeliverable event dropped: no dead-letter topic")
	} else {
		log.Str("dead_letter_topic", dlq.topic).Msg("undeliverable event dead-lettered")
	}
	return nil
}

// kafkaMessage reads msg as a CloudEvent, with its own headers only: the
// binding's constructor would add kafka* extensions a KafkaSource does
// not send.
func kafkaMessage(msg *sarama.ConsumerMessage) binding.Message {
	headers := make(map[string][]byte, len(msg.Headers))
	var contentType string
	for _, h := range msg.Headers {
		k := strings.ToLower(string(h.Key))
		headers[k] = h.Value
		if k == "content-type" {
			contentType = string(h.Value)
		}
	}
	return kafka_sarama.NewMessage(msg.Value, contentType, headers)
}

// delivery is how the last attempt ended.
type delivery struct {
	result string
	status int    // 0 without a reply
	body   []byte // of the reply, truncated
	err    error
}

// deliver POSTs m to the sink until it succeeds, is rejected, or Retry
// retries have failed.
func (s *Source) deliver(ctx context.Context, m binding.Message) delivery {
	for attempt := 0; ; attempt++ {
		d := s.post(ctx, m)
		s.m.deliveries.WithLabelValues(s.cfg.Name, d.result).Inc()
		if d.result != ResultFailed || attempt >= s.cfg.Retry || ctx.Err() != nil {
			return d
		}
		if !sleep(ctx, s.cfg.BackoffDelay<<attempt) {
			return d
		}
	}
}

func (s *Source) post(ctx context.Context, m binding.Message) delivery {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.Sink, nil)
	if err != nil {
		return delivery{result: ResultRejected, err: err}
	}
	if err := cehttp.WriteRequest(ctx, m, req); err != nil {
		// Not a CloudEvent: no sink can take it.
		return delivery{result: ResultRejected, err: fmt.Errorf("not a CloudEvent: %w", err)}
	}
	if s.cfg.Token != nil {
		tok, err := s.cfg.Token(ctx)
		if err != nil {
			return delivery{result: ResultFailed, err: fmt.Errorf("sender token: %w", err)}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return delivery{result: ResultFailed, err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	_, _ = io.Copy(io.Discard, resp.Body) // lets the connection be reused
	d := delivery{status: resp.StatusCode, body: body}
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		d.result = ResultSuccess
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		d.result = ResultFailed
	default:
		d.result = ResultRejected
	}
	return d
}

func header(msg *sarama.ConsumerMessage, key string) string {
	for _, h := range msg.Headers {
		if strings.EqualFold(string(h.Key), key) {
			return string(h.Value)
		}
	}
	return ""
}

// deadLetters writes undeliverable records to the dead-letter topic with
// a producer made on first use.
type deadLetters struct {
	cfg   kafka.Config
	topic string
	log   zerolog.Logger
	// mu guards making the producer: partitions dead-letter concurrently.
	mu       sync.Mutex
	producer sarama.SyncProducer
}

// send copies msg (key, value, headers) to the dead-letter topic, adding
// the extensions Knative uses to say why: knativeerrordest (the sink),
// knativeerrorcode (the last status) and knativeerrordata (base64 of the
// start of the last reply, or the error). It retries until it succeeds or
// ctx ends: the record is only committed once it is somewhere.
func (d *deadLetters) send(ctx context.Context, msg *sarama.ConsumerMessage, sink string, why delivery) error {
	out := &sarama.ProducerMessage{Topic: d.topic, Value: sarama.ByteEncoder(msg.Value)}
	if msg.Key != nil {
		out.Key = sarama.ByteEncoder(msg.Key)
	}
	for _, h := range msg.Headers {
		out.Headers = append(out.Headers, *h)
	}
	data := why.body
	if len(data) == 0 && why.err != nil {
		data = []byte(why.err.Error())
	}
	out.Headers = append(out.Headers,
		sarama.RecordHeader{Key: []byte("ce_knativeerrordest"), Value: []byte(sink)},
		sarama.RecordHeader{Key: []byte("ce_knativeerrorcode"), Value: []byte(strconv.Itoa(why.status))},
		sarama.RecordHeader{Key: []byte("ce_knativeerrordata"), Value: []byte(base64.StdEncoding.EncodeToString(bytes.TrimSpace(data)))},
	)
	for delay := d.cfg.RetryBackoff; ; delay = min(2*delay, 5*time.Second) {
		err := d.produce(out)
		if err == nil {
			return nil
		}
		d.log.Warn().Err(err).Msg("dead-letter topic not writable; retrying")
		if !sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

func (d *deadLetters) produce(m *sarama.ProducerMessage) error {
	d.mu.Lock()
	if d.producer == nil {
		sc, err := d.cfg.Sarama()
		if err == nil {
			sc.Producer.RequiredAcks = sarama.WaitForAll
			sc.Producer.Return.Successes = true
			d.producer, err = sarama.NewSyncProducer(d.cfg.Brokers, sc)
		}
		if err != nil {
			d.mu.Unlock()
			return err
		}
	}
	p := d.producer
	d.mu.Unlock()
	_, _, err := p.SendMessage(m)
	return err
}

func (d *deadLetters) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.producer != nil {
		_ = d.producer.Close()
	}
}
