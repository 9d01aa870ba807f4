package kafka

import (
	"fmt"

	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/outbox"
)

// Open returns the publisher of function b, counted in m and closed with
// b, or nil when cfg names no brokers: then events wait in the outbox for
// relay-outbox. Only the functions that publish call it, so only they link
// a Kafka client.
func Open(b *function.Base, cfg Config, m *outbox.Metrics) (outbox.Publisher, error) {
	if len(cfg.Brokers) == 0 {
		return nil, nil
	}
	pub, err := NewPublisher(cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka publisher: %w", err)
	}
	b.OnClose("kafka publisher", pub.Close)
	return m.Instrument(pub), nil
}
