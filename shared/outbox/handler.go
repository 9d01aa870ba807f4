package outbox

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
)

// RelayConfig is relay-outbox's own configuration.
type RelayConfig struct {
	// Batch bounds the events one Relay run publishes.
	Batch int `envconfig:"RELAY_BATCH" default:"1000"`
	// MaxDuration: a tick starts no further run after this long, so a
	// large backlog is drained over several ticks rather than in one
	// request that outlives its timeout.
	MaxDuration time.Duration `envconfig:"RELAY_MAX_DURATION" default:"30s"`
}

// RelayHandler serves relay-outbox's one route: a PingSource tick, a
// CloudEvent of type dev.knative.sources.ping POSTed in either content
// mode, runs Relay until the outbox is drained or MaxDuration has passed.
// It answers 200 only when everything it took on is published; 503 when
// Kafka is unreachable and 500 for other failures, so the tick is retried,
// and 400 for a request that is no tick, which retrying cannot fix.
type RelayHandler struct {
	pool *pgxpool.Pool
	pub  Publisher
	m    *Metrics
	cfg  RelayConfig
}

// NewRelayHandler returns the handler; pub should be instrumented by m.
func NewRelayHandler(pool *pgxpool.Pool, pub Publisher, m *Metrics, cfg RelayConfig) (*RelayHandler, error) {
	if pool == nil || pub == nil || m == nil {
		return nil, errors.New("outbox: NewRelayHandler needs a pool, a publisher and metrics")
	}
	if cfg.Batch < 1 || cfg.MaxDuration <= 0 {
		return nil, fmt.Errorf("outbox: relay config %+v: batch and duration must be positive", cfg)
	}
	return &RelayHandler{pool: pool, pub: pub, m: m, cfg: cfg}, nil
}

func (h *RelayHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	httpx.Handle(h.tick).ServeHTTP(w, r)
}

// tick relays until drained or out of time; its failure maps as for any
// route (httpx.ProblemOf): Kafka unreachable is a 503 (events.ErrUnavailable).
func (h *RelayHandler) tick(w http.ResponseWriter, r *http.Request) error {
	ce, err := events.Read(w, r, 64<<10)
	if err != nil {
		return err
	}
	if ce.Type() != events.PingSourceType {
		return httpx.BadRequest(fmt.Sprintf("event type %q: relay-outbox acts on %s only", ce.Type(), events.PingSourceType))
	}
	ctx := r.Context()
	log := zerolog.Ctx(ctx)
	var total RelayResult
	start := time.Now()
	for {
		res, err := Relay(ctx, h.pool, h.pub, h.cfg.Batch)
		total.Keys += res.Keys
		total.Published += res.Published
		total.Failed += res.Failed
		total.Pending = res.Pending
		h.m.SetPending(res.Pending)
		if err != nil {
			log.Warn().Err(err).Str("tick", ce.ID()).Interface("relay", total).Msg("relay stopped early")
			return err
		}
		// A run short of its batch found nothing more to do.
		if res.Published < h.cfg.Batch || res.Pending == 0 || time.Since(start) >= h.cfg.MaxDuration {
			break
		}
	}
	log.Info().Str("tick", ce.ID()).Interface("relay", total).Msg("relayed")
	httpx.WriteJSON(w, http.StatusOK, total)
	return nil
}
