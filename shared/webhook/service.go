package webhook

import (
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/project"
)

// Wired is the sink and the retry tick wired on one base: the
// deliver-webhooks and retry-webhooks functions each serve one of them,
// the dev runner both.
type Wired struct {
	Sink      *Sink
	Deliverer *Deliverer
}

// Wire wires delivery on b: secrets opened with cfg's key, the owner's
// API roles read through roles, the event that a webhook was disabled
// written to topic and published by pub after commit (nil: by
// relay-outbox). Closing b waits for attempts still running.
func Wire(b *function.Base, cfg Config, roles *project.Resolver, topic string, pub outbox.Publisher) (*Wired, error) {
	sealer, err := NewSealer(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	store, err := NewStore(b.DB, sealer, topic, pub)
	if err != nil {
		return nil, err
	}
	d, err := NewDeliverer(store, roles, cfg, NewMetrics(b.Registry))
	if err != nil {
		return nil, err
	}
	b.OnClose("webhook attempts", d.Wait)
	s, err := NewSink(store, d)
	if err != nil {
		return nil, err
	}
	return &Wired{Sink: s, Deliverer: d}, nil
}
