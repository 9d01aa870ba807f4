package cache

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of a Get, the result label of taskfn_cache_requests_total.
const (
	resultHit         = "hit"
	resultMiss        = "miss"
	resultNegativeHit = "negative_hit"
	resultError       = "error" // Redis failed or was skipped; served from the primary
)

// Redis operations, the op label of taskfn_cache_request_duration_seconds.
const (
	opGet        = "get"        // the lookup (MGET)
	opObserve    = "observe"    // generation and server time, before a miss loads or a writer writes
	opSet        = "set"        // a reader placing what it loaded
	opRefresh    = "refresh"    // a writer placing what it committed
	opInvalidate = "invalidate" // a new generation after failed refreshes
)

// Pools a miss or fallback loads from, the pool label of taskfn_cache_loads_total.
const (
	poolReplica = "replica"
	poolPrimary = "primary"
)

// instruments are the cache's metrics, children resolved once so the hot
// path does no label lookups.
type instruments struct {
	results       map[string]prometheus.Counter
	durations     map[string]prometheus.Observer
	loads         map[string]prometheus.Counter
	invalidations prometheus.Counter
	breaker       prometheus.Gauge
}

func newInstruments(reg prometheus.Registerer, name string) (*instruments, error) {
	labels := prometheus.Labels{"cache": name}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "taskfn_cache_requests_total",
		Help:        "Cache lookups by result: hit, miss, negative_hit (a cached 'no such task'), error (Redis failed or was bypassed; the primary answered).",
		ConstLabels: labels,
	}, []string{"result"})
	durations := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:        "taskfn_cache_request_duration_seconds",
		Help:        "Time of one Redis round trip by operation: get, observe, set, refresh, invalidate.",
		ConstLabels: labels,
		// A local round trip is ~0.1ms; the top buckets show timeouts.
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
	}, []string{"op"})
	loads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "taskfn_cache_loads_total",
		Help:        "Database reads made for the cache, by pool: replica (misses), primary (fallbacks and reads just after an invalidation).",
		ConstLabels: labels,
	}, []string{"pool"})
	m := &instruments{
		results:   map[string]prometheus.Counter{},
		durations: map[string]prometheus.Observer{},
		loads:     map[string]prometheus.Counter{},
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "taskfn_cache_invalidations_total",
			Help:        "Generation changes: every cached entry dropped because a write could not refresh its own.",
			ConstLabels: labels,
		}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "taskfn_cache_breaker_state",
			Help:        "Redis circuit breaker: 0 closed (Redis used), 1 half-open (probing), 2 open (Redis skipped).",
			ConstLabels: labels,
		}),
	}
	// Resolved up front, so every series exists from the first scrape.
	for _, r := range []string{resultHit, resultMiss, resultNegativeHit, resultError} {
		m.results[r] = requests.WithLabelValues(r)
	}
	for _, op := range []string{opGet, opObserve, opSet, opRefresh, opInvalidate} {
		m.durations[op] = durations.WithLabelValues(op)
	}
	for _, p := range []string{poolReplica, poolPrimary} {
		m.loads[p] = loads.WithLabelValues(p)
	}
	for _, c := range []prometheus.Collector{requests, durations, loads, m.invalidations, m.breaker} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
