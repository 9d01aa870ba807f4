// Package metricstest reads a registry as /metrics shows it, for tests
// that count what the code did.
//
// prometheus/testutil reads a value only from a Collector the test holds
// (ToFloat64: exactly one counter or gauge series) and reads a Gatherer
// only to count its series or compare its whole text; our instruments are
// unexported and registered by the code under test, so tests read the
// registry by name, here.
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value is the value of metric name in g, summed over its series that
// carry labels (name, value, name, value …): a counter's or gauge's value,
// a histogram's sample count. Without labels, g must export name (an
// unlabelled metric is exported from its registration on, so a misspelt
// name fails t instead of reading 0); with labels, series not created yet
// read 0.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metricstest: labels %q are not name, value pairs", labels)
	}
	ms, ok := series(t, g, name)
	if !ok && len(labels) == 0 {
		t.Fatalf("metricstest: no metric %s", name)
	}
	var sum float64
	for _, m := range ms {
		if has(m, labels) {
			sum += value(m)
		}
	}
	return sum
}

// ByLabel is the value (as Value reads it) of each series of metric name in
// g, by the value of its label. g must export name.
func ByLabel(t testing.TB, g prometheus.Gatherer, name, label string) map[string]float64 {
	t.Helper()
	ms, ok := series(t, g, name)
	if !ok {
		t.Fatalf("metricstest: no metric %s", name)
	}
	out := make(map[string]float64, len(ms))
	for _, m := range ms {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out[l.GetValue()] += value(m)
			}
		}
	}
	return out
}

// series is every series of name in g, and whether g exports name at all.
func series(t testing.TB, g prometheus.Gatherer, name string) ([]*dto.Metric, bool) {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric(), true
		}
	}
	return nil, false
}

func has(m *dto.Metric, labels []string) bool {
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return m.GetUntyped().GetValue()
}
