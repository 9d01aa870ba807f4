package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/taskfn/taskfn/shared/events"
)

var errClosed = errors.New("kafka: publisher closed")

// Publisher sends events to Kafka as CloudEvents in binary content mode,
// keyed by events.Event.Key, through one idempotent sarama SyncProducer. It is
// safe for concurrent use; concurrent sends share produce requests.
//
// It connects on first use, not in NewPublisher, so a function starts
// while Kafka is down (its writes then wait in the outbox). After a failure
// it drops the producer, so the next attempt starts with a fresh producer
// id instead of a sequence the broker may no longer accept, and fails fast
// for Config.Cooldown.
type Publisher struct {
	cfg Config
	// mu is read-held for each send and write-held to replace or close
	// the producer, so a producer is never closed under a send. That
	// matters: the binding's Sender reports a send on a closed client as
	// success.
	mu       sync.RWMutex
	producer sarama.SyncProducer // nil until connected, and after a failure
	closed   bool
	// retryAt is when the cooldown ends, in Unix nanoseconds.
	retryAt atomic.Int64
}

// NewPublisher validates cfg; it does not connect.
func NewPublisher(cfg Config) (*Publisher, error) {
	if _, err := cfg.producerConfig(); err != nil {
		return nil, err
	}
	return &Publisher{cfg: cfg}, nil
}

// Publish sends ev to ev.Topic and returns once all in-sync replicas have
// it. Errors wrap events.ErrUnavailable or events.ErrRejected, and their
// cause too (sarama's error, the context's end) for errors.Is and
// errors.As. When ctx ends first, Publish returns events.ErrUnavailable at
// once and the send finishes (or fails) on its own; the caller must then
// treat the event as not published, and a later re-send as a possible
// duplicate, which the event id identifies.
func (p *Publisher) Publish(ctx context.Context, ev events.Event) error {
	if time.Now().UnixNano() < p.retryAt.Load() {
		return events.ErrCoolingDown
	}
	ce, err := ev.CloudEvent()
	if err != nil {
		return fmt.Errorf("%w: %w", events.ErrRejected, err)
	}
	// sarama takes no context: in a network partition a send may wait
	// out dial and read timeouts for every retry.
	done := make(chan error, 1)
	go func() { done <- p.send(ev, ce) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		p.retryAt.Store(time.Now().Add(p.cfg.Cooldown).UnixNano())
		return fmt.Errorf("%w: %s %s: %w", events.ErrUnavailable, ev.Type, ev.ID, ctx.Err())
	}
}

func (p *Publisher) send(ev events.Event, ce event.Event) error {
	prod, err := p.acquire()
	if err != nil {
		if !errors.Is(err, errClosed) {
			p.coolDown(nil)
		}
		return err
	}
	sender, err := kafka_sarama.NewSenderFromSyncProducer(ev.Topic, prod)
	if err == nil {
		ctx := kafka_sarama.WithMessageKey(binding.WithForceBinary(context.Background()), sarama.StringEncoder(ev.Key))
		err = sender.Send(ctx, binding.ToMessage(&ce))
	}
	p.mu.RUnlock()
	if err == nil {
		return nil
	}
	if rejected(err) {
		return fmt.Errorf("%w: %s %s: %w", events.ErrRejected, ev.Type, ev.ID, err)
	}
	p.coolDown(prod)
	return fmt.Errorf("%w: %s %s: %w", events.ErrUnavailable, ev.Type, ev.ID, err)
}

// acquire returns the producer with p.mu read-locked, connecting first
// when there is none.
func (p *Publisher) acquire() (sarama.SyncProducer, error) {
	for {
		p.mu.RLock()
		if p.closed {
			p.mu.RUnlock()
			return nil, errClosed
		}
		if p.producer != nil {
			return p.producer, nil
		}
		p.mu.RUnlock()

		p.mu.Lock()
		if p.producer == nil && !p.closed {
			sc, err := p.cfg.producerConfig()
			if err == nil {
				p.producer, err = sarama.NewSyncProducer(p.cfg.Brokers, sc)
			}
			if err != nil {
				p.mu.Unlock()
				return nil, fmt.Errorf("%w: connect: %w", events.ErrUnavailable, err)
			}
		}
		p.mu.Unlock()
	}
}

// coolDown starts the cooldown and drops failed, unless another send has
// already replaced it.
func (p *Publisher) coolDown(failed sarama.SyncProducer) {
	p.retryAt.Store(time.Now().Add(p.cfg.Cooldown).UnixNano())
	if failed == nil {
		return
	}
	p.mu.Lock()
	if p.producer != failed {
		failed = nil
	} else {
		p.producer = nil
	}
	p.mu.Unlock()
	if failed != nil {
		// Nobody else holds it: sends take the read lock.
		_ = failed.Close()
	}
}

// Close closes the producer; later publishes fail.
func (p *Publisher) Close() error {
	p.mu.Lock()
	prod := p.producer
	p.producer, p.closed = nil, true
	p.mu.Unlock()
	if prod == nil {
		return nil
	}
	return prod.Close()
}

// rejected reports whether Kafka refused this event itself, as opposed to
// being unable to take any event now.
func rejected(err error) bool {
	// sarama checks the size itself and calls a too large record a
	// configuration error.
	var ce sarama.ConfigurationError
	if errors.As(err, &ce) {
		return true
	}
	for _, k := range []sarama.KError{sarama.ErrMessageSizeTooLarge, sarama.ErrInvalidRecord, sarama.ErrInvalidTopic} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
