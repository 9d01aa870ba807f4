package events

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/taskfn/taskfn/shared/httpx"
)

// SinkHandler serves CloudEvents POSTed over HTTP (binary or structured
// mode, as a KafkaSource or PingSource delivers them) to handle, and
// answers with the outcome: 204 when handled; else a problem whose status
// is the sender's retry decision — 4xx never retried (dead letter), 5xx
// retried: handle's errors map as for any route (httpx.ProblemOf), so a
// sink returns errs.ErrPoison (wrapped) for an event it can never process.
func SinkHandler(maxBytes int64, handle func(context.Context, event.Event) error) http.Handler {
	return httpx.Handle(func(w http.ResponseWriter, r *http.Request) error {
		ev, err := Read(w, r, maxBytes)
		if err != nil {
			return err
		}
		if err := handle(r.Context(), ev); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// Read reads the CloudEvent of a request of at most maxBytes, in either
// content mode; a request that is none is a 400 problem. A JSON body (a
// structured event, or JSON data) beyond httpx.LimitJSON is refused before
// anything decodes it: the SDK turns each member of a structured event
// into an attribute, and a sink decodes the data, at about 100 bytes a
// token. The count is exact for JSON, so a structured event must be JSON
// to encoding/json before the SDK's own parser reads it.
func Read(w http.ResponseWriter, r *http.Request, maxBytes int64) (event.Event, error) {
	body, err := httpx.ReadLimited(w, r, maxBytes)
	if err != nil {
		return event.Event{}, err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && httpx.IsJSON(mt) {
		if err := httpx.LimitJSON(body); err != nil {
			return event.Event{}, err
		}
		if mt == event.ApplicationCloudEventsJSON && !json.Valid(body) {
			return event.Event{}, httpx.BadRequest("the request is not a CloudEvent: the body is not JSON")
		}
	}
	// A bytes.Reader is copied into the SDK's buffer in one write.
	r.Body = io.NopCloser(bytes.NewReader(body))
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		return event.Event{}, httpx.BadRequest("the request is not a CloudEvent: " + err.Error())
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, httpx.BadRequest("the CloudEvent is not valid: " + err.Error())
	}
	return *ev, nil
}
