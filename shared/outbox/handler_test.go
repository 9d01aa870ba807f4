package outbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/metrics/metricstest"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// pingRequest is a PingSource tick as Knative POSTs it (binary mode), or
// in structured mode.
func pingRequest(typ string, structured bool) *http.Request {
	if structured {
		body := fmt.Sprintf(`{"specversion":"1.0","id":"%s","source":"/apis/v1/namespaces/taskfn/pingsources/relay-outbox","type":"%s"}`, uuid.NewString(), typ)
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/cloudevents+json")
		return r
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("Ce-Specversion", "1.0")
	r.Header.Set("Ce-Id", uuid.NewString())
	r.Header.Set("Ce-Source", "/apis/v1/namespaces/taskfn/pingsources/relay-outbox")
	r.Header.Set("Ce-Type", typ)
	return r
}

func TestRelayHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		req           *http.Request
		fail          error
		batch         int
		wantStatus    int
		wantPublished int // of 6 pending events
	}{
		{"binary tick", pingRequest(events.PingSourceType, false), nil, 100, http.StatusOK, 6},
		{"structured tick", pingRequest(events.PingSourceType, true), nil, 100, http.StatusOK, 6},
		{"small batches drain in one tick", pingRequest(events.PingSourceType, false), nil, 2, http.StatusOK, 6},
		{"kafka down", pingRequest(events.PingSourceType, false), errDown, 100, http.StatusServiceUnavailable, 0},
		{"event rejected", pingRequest(events.PingSourceType, false), fmt.Errorf("%w: big", events.ErrRejected), 100, http.StatusInternalServerError, 0},
		{"not a tick", pingRequest(events.TaskCreated, false), nil, 100, http.StatusBadRequest, 0},
		{"not a CloudEvent", httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")), nil, 100, http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t).Primary
			for range 3 {
				addEvents(t, pool, "topic", uuid.New(), 2)
			}
			reg := prometheus.NewRegistry()
			m := outbox.NewMetrics(reg)
			rec := &recorder{fail: func(events.Event) error { return tt.fail }}
			h, err := outbox.NewRelayHandler(pool, m.Instrument(rec), m, outbox.RelayConfig{Batch: tt.batch, MaxDuration: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantStatus, w.Body)
			}
			if len(rec.ids()) != tt.wantPublished {
				t.Errorf("published %d, want %d", len(rec.ids()), tt.wantPublished)
			}
			if tt.wantStatus == http.StatusOK {
				var res outbox.RelayResult
				if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || res.Published != 6 || res.Pending != 0 {
					t.Errorf("body %s (%v)", w.Body, err)
				}
			} else if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q, want a problem", ct)
			}
			if tt.wantStatus != http.StatusBadRequest {
				if got := metricstest.Value(t, reg, "taskfn_outbox_pending"); got != float64(6-tt.wantPublished) {
					t.Errorf("pending gauge %v, want %d", got, 6-tt.wantPublished)
				}
			}
			if got := metricstest.Value(t, reg, "taskfn_outbox_published_total"); got != float64(tt.wantPublished) {
				t.Errorf("published_total %v, want %d", got, tt.wantPublished)
			}
			wantErrs := 0.0
			if tt.fail != nil {
				wantErrs = 1 // the relay stops a key at its first failure
			}
			if got := metricstest.Value(t, reg, "taskfn_outbox_publish_errors_total"); got < wantErrs || (wantErrs == 0 && got != 0) {
				t.Errorf("publish_errors_total %v, want at least %v", got, wantErrs)
			}
		})
	}
}

// A tick starts no further run once RELAY_MAX_DURATION has passed, and
// leaves the rest to the next tick: each run here takes longer than the
// limit (every publish sleeps past it), so the first run is the last. The
// clock is not raced: a run can only be slower than the sleep, never
// faster.
func TestRelayHandlerStopsAtMaxDuration(t *testing.T) {
	t.Parallel()
	const slow = 20 * time.Millisecond
	tests := []struct {
		name          string
		maxDuration   time.Duration
		wantPublished int // of 6, one per run
	}{
		{"runs outlast the limit: one run", slow / 2, 1},
		{"within the limit: drained", time.Minute, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t).Primary
			for range 6 {
				addEvents(t, pool, "topic", uuid.New(), 1)
			}
			m := outbox.NewMetrics(prometheus.NewRegistry())
			rec := &recorder{fail: func(events.Event) error {
				time.Sleep(slow)
				return nil
			}}
			h, err := outbox.NewRelayHandler(pool, rec, m, outbox.RelayConfig{Batch: 1, MaxDuration: tt.maxDuration})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, pingRequest(events.PingSourceType, false))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var res outbox.RelayResult
			if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
				t.Fatal(err)
			}
			if res.Published != tt.wantPublished || res.Pending != int64(6-tt.wantPublished) || len(rec.ids()) != tt.wantPublished {
				t.Errorf("tick %+v, %d sent; want %d published", res, len(rec.ids()), tt.wantPublished)
			}
		})
	}
}

func TestNewRelayHandlerRejectsMissingDependencies(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t).Primary
	m := outbox.NewMetrics(prometheus.NewRegistry())
	good := outbox.RelayConfig{Batch: 10, MaxDuration: time.Second}
	tests := []struct {
		name string
		call func() error
	}{
		{"no pool", func() error { _, err := outbox.NewRelayHandler(nil, &recorder{}, m, good); return err }},
		{"no publisher", func() error { _, err := outbox.NewRelayHandler(pool, nil, m, good); return err }},
		{"no metrics", func() error { _, err := outbox.NewRelayHandler(pool, &recorder{}, nil, good); return err }},
		{"batch 0", func() error {
			_, err := outbox.NewRelayHandler(pool, &recorder{}, m, outbox.RelayConfig{MaxDuration: time.Second})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.call() == nil {
				t.Error("accepted")
			}
		})
	}
}
