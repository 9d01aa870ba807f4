package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

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

// MaxIDBytes bounds the id of an event Read takes. Ours are UUIDs; a sink
// keys processed_events by the id, and a btree index row holds at most
// 2704 bytes, beyond which the insert failed (54000) as a 500.
const MaxIDBytes = 1024

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
	if err := Check(ev); err != nil {
		return event.Event{}, err
	}
	return *ev, nil
}

// Check is what Read asks of each event beyond the SDK's parse: valid, its
// id, source, type and subject storable text, its id bounded. A refusal is
// a 400 problem.
func Check(ev *event.Event) error {
	if err := ev.Validate(); err != nil {
		return httpx.BadRequest("the CloudEvent is not valid: " + err.Error())
	}
	// CloudEvents Strings are Unicode without control characters (the
	// spec's type system); the SDK does not check. A sink stores the id
	// (notify's processed_events), and PostgreSQL refuses text that is
	// not UTF-8 or holds NUL: that answered 500, so the event was
	// redelivered to fail again (FuzzSinkHandler's find).
	for _, a := range [...]struct{ name, value string }{
		{"id", ev.ID()}, {"source", ev.Source()}, {"type", ev.Type()}, {"subject", ev.Subject()},
	} {
		if !utf8.ValidString(a.value) || strings.IndexFunc(a.value, unicode.IsControl) >= 0 {
			return httpx.BadRequest(fmt.Sprintf("the CloudEvent's %s must be UTF-8 without control characters", a.name))
		}
	}
	if len(ev.ID()) > MaxIDBytes {
		return httpx.BadRequest(fmt.Sprintf("the CloudEvent's id must be at most %d bytes", MaxIDBytes))
	}
	return nil
}

// ReadBatch reads the CloudEvents of a request of at most maxBytes in any
// of the HTTP binding's content modes: binary or structured (one event),
// or batched (application/cloudevents-batch+json: at most maxEvents, each
// of at most httpx.MaxJSONTokens tokens on average). It reports whether
// the request was a batch; each event passes Check, or the whole request
// is a 400 problem naming the first that does not ("event 3: ...").
func ReadBatch(w http.ResponseWriter, r *http.Request, maxBytes int64, maxEvents int) ([]event.Event, bool, error) {
	if !cehttp.IsHTTPBatch(r.Header) {
		ev, err := Read(w, r, maxBytes)
		if err != nil {
			return nil, false, err
		}
		return []event.Event{ev}, false, nil
	}
	body, err := httpx.ReadLimited(w, r, maxBytes)
	if err != nil {
		return nil, true, err
	}
	if err := httpx.LimitJSONTokens(body, maxEvents*httpx.MaxJSONTokens); err != nil {
		return nil, true, err
	}
	if !json.Valid(body) {
		return nil, true, httpx.BadRequest("the request is not a CloudEvents batch: the body is not JSON")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	evs, err := cehttp.NewEventsFromHTTPRequest(r)
	if err != nil {
		return nil, true, httpx.BadRequest("the request is not a CloudEvents batch: " + err.Error())
	}
	switch {
	case len(evs) == 0:
		return nil, true, httpx.BadRequest("the batch holds no event")
	case len(evs) > maxEvents:
		return nil, true, httpx.BadRequest(fmt.Sprintf("a batch holds at most %d events", maxEvents))
	}
	for i := range evs {
		if err := Check(&evs[i]); err != nil {
			p := httpx.AsProblem(err)
			return nil, true, httpx.BadRequest(fmt.Sprintf("event %d: %s", i, p.Detail))
		}
	}
	return evs, true, nil
}
