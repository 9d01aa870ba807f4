package events

import (
	"context"
	"errors"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/taskfn/taskfn/shared/httpx"
)

// SinkHandler serves CloudEvents POSTed over HTTP (binary or structured
// mode, as a KafkaSource or PingSource delivers them) to handle, and
// answers with the outcome: 204 when handled; else a problem whose status
// is the sender's retry decision — 4xx never retried (dead letter), 5xx
// retried. problem maps handle's errors, as for any route.
func SinkHandler(problem httpx.ProblemFunc, maxBytes int64, handle func(context.Context, event.Event) error) http.Handler {
	return httpx.Handle(problem, func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, maxBytes)
		ev, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return httpx.TooLarge(maxBytes)
			}
			return httpx.BadRequest("the request is not a CloudEvent: " + err.Error())
		}
		if err := ev.Validate(); err != nil {
			return httpx.BadRequest("the CloudEvent is not valid: " + err.Error())
		}
		if err := handle(r.Context(), *ev); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}
