package outbox

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfn/taskfn/shared/events"
)

// Metrics are the outbox's instruments.
type Metrics struct {
	pending   prometheus.Gauge
	published prometheus.Counter
	errors    prometheus.Counter
}

// NewMetrics registers the outbox instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "taskfn_outbox_pending",
			Help: "Events in the outbox not yet published, as of the last relay run.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskfn_outbox_published_total",
			Help: "Events Kafka acknowledged.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskfn_outbox_publish_errors_total",
			Help: "Publish attempts that failed; the event stays in the outbox.",
		}),
	}
	reg.MustRegister(m.pending, m.published, m.errors)
	return m
}

// Instrument returns pub counting its successes and failures in m.
// Refusals during the publisher's cooldown are not attempts and are not
// counted.
func (m *Metrics) Instrument(pub Publisher) Publisher {
	return &counted{pub: pub, m: m}
}

// SetPending records the outbox backlog.
func (m *Metrics) SetPending(n int64) { m.pending.Set(float64(n)) }

type counted struct {
	pub Publisher
	m   *Metrics
}

func (c *counted) Publish(ctx context.Context, ev events.Event) error {
	err := c.pub.Publish(ctx, ev)
	switch {
	case err == nil:
		c.m.published.Inc()
	case !isCoolingDown(err):
		c.m.errors.Inc()
	}
	return err
}
