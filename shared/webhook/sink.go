package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
)

// maxEventBytes bounds an event's body; ours are a few KiB.
const maxEventBytes = 1 << 20

// Sink is the deliver-webhooks sink: every event of the tasks topic,
// from a KafkaSource. It stores one delivery per matching webhook whose
// owner may see the event (durable before it answers 2xx; a redelivered
// event adds none), starts their first attempts and answers within
// WEBHOOK_SINK_WAIT whatever the receivers do.
type Sink struct {
	store *Store
	d     *Deliverer
}

// NewSink returns the sink over store, attempting through d.
func NewSink(store *Store, d *Deliverer) (*Sink, error) {
	if store == nil || d == nil {
		return nil, errors.New("webhook: NewSink needs the store and a deliverer")
	}
	return &Sink{store: store, d: d}, nil
}

// Route is the sink's route: CloudEvents are POSTed to /.
func (s *Sink) Route() httpx.Route {
	return httpx.Route{Name: "deliver-webhooks", Method: http.MethodPost, Path: "/", Handler: events.SinkHandler(maxEventBytes, s.Handle)}
}

// Handle enqueues ev for its webhooks and starts the first attempts.
func (s *Sink) Handle(ctx context.Context, ev event.Event) error {
	if !slices.Contains(Subscribable, ev.Type()) {
		return nil
	}
	touched, err := Touched(ev.Data())
	if err != nil {
		return err
	}
	targets, err := s.store.Targets(ctx, ev.Type(), touched)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return nil
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%w: the event does not encode: %v", errs.ErrPoison, err)
	}
	var ds []NewDelivery
	for _, t := range targets {
		acc, err := s.d.roles.Access(ctx, t.Owner.Identity())
		if err != nil {
			return err
		}
		if !CanReceive(acc, t.Project, touched) {
			continue
		}
		ds = append(ds, NewDelivery{WebhookID: t.ID, EventID: ev.ID(), EventType: ev.Type(), Projects: touched, Event: raw})
	}
	ids, err := s.store.Enqueue(ctx, ds)
	if err != nil {
		return err
	}
	res, err := s.d.Start(ctx, ids, s.d.cfg.SinkWait)
	log := zerolog.Ctx(ctx).With().Str("event.id", ev.ID()).Str("event.type", ev.Type()).Logger()
	if err != nil {
		// Stored: the tick retries what could not be marked.
		log.Warn().Err(err).Msg("first attempts not all marked")
	}
	log.Debug().Int("webhooks", len(ds)).Int("new", len(ids)).Interface("attempts", res).Msg("event enqueued")
	return nil
}

// Touched returns the projects an event's data names: a task's (task and
// comment events), both tasks' (relation events). Data that is not a
// JSON object is poison.
func Touched(data []byte) ([]string, error) {
	var d struct {
		Task *struct {
			Project string `json:"project"`
		} `json:"task"`
		Project      string `json:"project"`
		OtherProject string `json:"other_project"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: data is not the expected JSON: %v", errs.ErrPoison, err)
	}
	var out []string
	for _, p := range []string{d.Project, d.OtherProject} {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if d.Task != nil && d.Task.Project != "" && !slices.Contains(out, d.Task.Project) {
		out = append(out, d.Task.Project)
	}
	return out, nil
}
