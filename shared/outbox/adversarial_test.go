package outbox_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// TestAdversarialBodies holds relay-outbox's tick handler to a small
// answer and a bounded allocation for requests built to multiply either
// (issue #21). Not parallel: the allocations measured are the process's.
func TestAdversarialBodies(t *testing.T) {
	m := outbox.NewMetrics(prometheus.NewRegistry())
	rec := &recorder{}
	h, err := outbox.NewRelayHandler(pgtest.New(t).Primary, m.Instrument(rec), m, outbox.RelayConfig{Batch: 10, MaxDuration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 10 // the handler's limit
	typ := events.PingSourceType
	cases := append(eventstest.Adversarial(typ, size), httpxtest.Case{
		Name: "huge type", Status: 400, Request: func() *http.Request {
			return eventstest.Structured(httpxtest.Fill(`{"specversion":"1.0","id":"1","source":"/s","type":"`, `a`, `"}`, size))
		},
	})
	httpxtest.CheckBounded(t, h, httpxtest.BoundsFor(size), cases, nil)
	if n := len(rec.ids()); n != 0 {
		t.Errorf("%d events published", n)
	}
}
