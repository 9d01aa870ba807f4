package ratelimit

import (
	"github.com/prometheus/client_golang/prometheus"
)

// instruments are the limiter's metrics, one child per class resolved up
// front: the hot path does no label lookups, and every series exists from
// the first scrape.
type instruments struct {
	limited    [numClasses]prometheus.Counter
	failOpen   [numClasses]prometheus.Counter
	redisCalls [numClasses]prometheus.Counter
	breaker    prometheus.Gauge
}

func newInstruments(reg prometheus.Registerer) (*instruments, error) {
	limited := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskfn_ratelimit_limited_total",
		Help: "Requests refused with 429 because their caller's quota in the class was used up.",
	}, []string{"class"})
	failOpen := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskfn_ratelimit_fail_open_total",
		Help: "Requests let through unchecked because Redis failed, timed out or was skipped by the open circuit breaker.",
	}, []string{"class"})
	redisCalls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "taskfn_ratelimit_redis_calls_total",
		Help: "Quota checks that called Redis; the other requests were answered from a lease (RATE_LIMIT_LEASE).",
	}, []string{"class"})
	m := &instruments{
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "taskfn_ratelimit_breaker_state",
			Help: "The rate limiter's Redis circuit breaker: 0 closed (Redis used), 1 half-open (probing), 2 open (requests go on unchecked).",
		}),
	}
	for c := range numClasses {
		m.limited[c] = limited.WithLabelValues(c.String())
		m.failOpen[c] = failOpen.WithLabelValues(c.String())
		m.redisCalls[c] = redisCalls.WithLabelValues(c.String())
	}
	for _, c := range []prometheus.Collector{limited, failOpen, redisCalls, m.breaker} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
