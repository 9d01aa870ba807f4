package notify

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
)

// maxEventBytes bounds an event's body; ours are a few KiB.
const maxEventBytes = 1 << 20

// errMailUnavailable wraps a retryable email failure: the event is
// redelivered and the email sent then.
var errMailUnavailable = errs.New(errs.Unavailable, "notify: the mail server cannot take the email now",
	"the mail server cannot take the email now; redeliver the event").After(5 * time.Second)

// Sink is notify's CloudEvent sink: task events from the tasks topic and
// report.completed from the reports topic, delivered by a KafkaSource.
// It answers 2xx only once the event's notifications (and emails) are
// durable, 4xx for an event it can never process, 5xx when a retry may
// help.
type Sink struct {
	store *Store
	send  SendFunc // nil: email is off
	from  string
	lease time.Duration // SMTP_CLAIM_LEASE
}

// NewSink returns the sink over store. A nil sender turns email off.
func NewSink(store *Store, sender *Sender) (*Sink, error) {
	if store == nil {
		return nil, errors.New("notify: NewSink needs a store")
	}
	s := &Sink{store: store}
	if sender != nil {
		s.send, s.from, s.lease = sender.Send, sender.from.String(), sender.cfg.ClaimLease
	}
	return s, nil
}

// Route is the sink's route: CloudEvents are POSTed to /.
func (s *Sink) Route() httpx.Route {
	return httpx.Route{Name: "notify", Method: http.MethodPost, Path: "/", Handler: events.SinkHandler(maxEventBytes, s.Handle)}
}

// Handle processes one event.
func (s *Sink) Handle(ctx context.Context, ev event.Event) error {
	log := zerolog.Ctx(ctx).With().Str("event.id", ev.ID()).Str("event.type", ev.Type()).Logger()
	notices, err := Decide(ev.Type(), ev.DataContentType(), ev.Data())
	if err != nil {
		return err
	}
	if len(notices) == 0 {
		log.Debug().Msg("nothing to notify")
		return nil
	}
	from := ""
	if s.send != nil {
		from = s.from
	}
	rec, err := s.store.Record(ctx, ev.ID(), notices, from)
	if err != nil {
		return err
	}
	var sent Sent
	if s.send != nil {
		// Also on a duplicate: an earlier delivery may have stored the
		// emails and failed to send them.
		if sent, err = s.store.SendPending(ctx, ev.ID(), s.lease, s.send); err != nil {
			return err
		}
	}
	if sent.LeaseLost > 0 {
		log.Warn().Int("emails.lease_lost", sent.LeaseLost).
			Msg("a send outlived its claim and another delivery took the email over: it may go out twice; SMTP_CLAIM_LEASE is too short")
	}
	log.Info().Bool("duplicate", rec.Duplicate).Int("notifications", rec.Notifications).
		Int("emails.queued", rec.Emails).Int("emails.sent", sent.Sent).Int("emails.refused", sent.Failed).
		Int("emails.lease_lost", sent.LeaseLost).Msg("event processed")
	return nil
}
