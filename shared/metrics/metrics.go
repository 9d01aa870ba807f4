// Package metrics holds taskfn's Prometheus instruments: the registry each
// function serves on /metrics, HTTP request metrics and pgx pool statistics.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
// Each function has its own (no global default registry), so tests can run
// many in one process.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus exposition format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// HTTP counts requests and observes their latency by route, method and status.
type HTTP struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTP registers the HTTP instruments on reg.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taskfn_http_requests_total",
			Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "taskfn_http_request_duration_seconds",
			Help: "Time to serve an HTTP request, by route and method.",
			// Fine buckets at the low end: cached reads take well under a millisecond.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// Observe records one served request.
func (m *HTTP) Observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

// poolCollector exports pgxpool.Stat at scrape time.
type poolCollector struct {
	pool  *pgxpool.Pool
	descs map[string]*prometheus.Desc
}

var poolStats = []struct {
	name, help string
	kind       prometheus.ValueType
	value      func(*pgxpool.Stat) float64
}{
	{"acquired_conns", "Connections currently in use.", prometheus.GaugeValue, func(s *pgxpool.Stat) float64 { return float64(s.AcquiredConns()) }},
	{"idle_conns", "Idle connections in the pool.", prometheus.GaugeValue, func(s *pgxpool.Stat) float64 { return float64(s.IdleConns()) }},
	{"total_conns", "Connections open, in use or idle or being made.", prometheus.GaugeValue, func(s *pgxpool.Stat) float64 { return float64(s.TotalConns()) }},
	{"max_conns", "Largest size the pool may grow to.", prometheus.GaugeValue, func(s *pgxpool.Stat) float64 { return float64(s.MaxConns()) }},
	{"acquires_total", "Successful acquires.", prometheus.CounterValue, func(s *pgxpool.Stat) float64 { return float64(s.AcquireCount()) }},
	{"empty_acquires_total", "Acquires that had to wait for a connection.", prometheus.CounterValue, func(s *pgxpool.Stat) float64 { return float64(s.EmptyAcquireCount()) }},
	{"canceled_acquires_total", "Acquires cancelled by their context.", prometheus.CounterValue, func(s *pgxpool.Stat) float64 { return float64(s.CanceledAcquireCount()) }},
	{"acquire_duration_seconds_total", "Time spent acquiring connections.", prometheus.CounterValue, func(s *pgxpool.Stat) float64 { return s.AcquireDuration().Seconds() }},
	{"new_conns_total", "Connections opened.", prometheus.CounterValue, func(s *pgxpool.Stat) float64 { return float64(s.NewConnsCount()) }},
}

// NewPoolCollector exports the statistics of pool, labelled pool=name
// ("primary", "replica").
func NewPoolCollector(name string, pool *pgxpool.Pool) prometheus.Collector {
	c := &poolCollector{pool: pool, descs: map[string]*prometheus.Desc{}}
	for _, s := range poolStats {
		c.descs[s.name] = prometheus.NewDesc("taskfn_pgxpool_"+s.name, s.help, nil, prometheus.Labels{"pool": name})
	}
	return c
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pool.Stat()
	for _, s := range poolStats {
		ch <- prometheus.MustNewConstMetric(c.descs[s.name], s.kind, s.value(st))
	}
}
