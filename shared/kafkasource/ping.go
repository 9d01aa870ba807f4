package kafkasource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/events"
)

// PingConfig is one PingSource.
type PingConfig struct {
	Name     string // names the sink in metrics and logs, and the event source
	Sink     string
	Interval time.Duration
	// Data is the JSON each tick carries (PingSource's spec.data); empty
	// sends none.
	Data         string
	Retry        int
	BackoffDelay time.Duration
	Timeout      time.Duration
	Token        func(ctx context.Context) (string, error) // as Config.Token
}

// Ping POSTs a dev.knative.sources.ping CloudEvent to the sink every
// Interval until ctx ends, retrying a failed tick like a Source retries a
// record (without a dead-letter topic: the next tick comes anyway).
func Ping(ctx context.Context, cfg PingConfig, m *Metrics, log zerolog.Logger) error {
	if cfg.Name == "" || cfg.Sink == "" || cfg.Interval <= 0 || cfg.Retry < 0 || cfg.BackoffDelay <= 0 || cfg.Timeout <= 0 || m == nil {
		return errors.New("kafkasource: ping needs a name, a sink, metrics, and positive interval, backoff and timeout")
	}
	s := &Source{
		cfg: Config{Name: cfg.Name, Sink: cfg.Sink, Retry: cfg.Retry, BackoffDelay: cfg.BackoffDelay, Timeout: cfg.Timeout, Token: cfg.Token},
		m:   m, log: log.With().Str("pingsource", cfg.Name).Logger(),
		client: &http.Client{Timeout: cfg.Timeout},
	}
	source := "/apis/v1/namespaces/dev/pingsources/" + cfg.Name
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			ev, err := tick(source, now, cfg.Data)
			if err != nil {
				return err
			}
			if d := s.deliver(ctx, binding.ToMessage(&ev)); d.result != ResultSuccess && ctx.Err() == nil {
				s.log.Warn().Int("status", d.status).AnErr("cause", d.err).Msg("tick not delivered")
			}
		}
	}
}

// tick is the event of one PingSource tick.
func tick(source string, now time.Time, data string) (event.Event, error) {
	ev := event.New()
	ev.SetID(uuid.NewString())
	ev.SetType(events.PingSourceType)
	ev.SetSource(source)
	ev.SetTime(now)
	if data != "" {
		// json.RawMessage, not []byte: sent as JSON, not base64.
		if err := ev.SetData(event.ApplicationJSON, json.RawMessage(data)); err != nil {
			return ev, fmt.Errorf("kafkasource: ping data: %w", err)
		}
	}
	return ev, ev.Validate()
}
