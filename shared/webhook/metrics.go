package webhook

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the delivery's instruments.
type Metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	disabled prometheus.Counter
}

// NewMetrics registers the delivery instruments on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskfn_webhook_attempts_total",
			Help: "Webhook delivery attempts by what became of the delivery: delivered, retrying, failed (given up), dropped (the owner may no longer see it).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "taskfn_webhook_attempt_duration_seconds",
			Help:    "Time from sending a webhook delivery to the receiver's answer (or the failure).",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taskfn_webhooks_disabled_total",
			Help: "Webhooks disabled after WEBHOOK_DISABLE_AFTER failed deliveries in a row.",
		}),
	}
	reg.MustRegister(m.attempts, m.duration, m.disabled)
	return m
}

func (m *Metrics) observe(o Outcome, f Finished) {
	if m == nil || f.LeaseLost {
		return
	}
	result := o.State
	if result == "pending" {
		result = "retrying"
	}
	m.attempts.WithLabelValues(result).Inc()
	if o.State != "dropped" {
		m.duration.Observe(o.Latency.Seconds())
	}
	if f.Disabled {
		m.disabled.Inc()
	}
}
