package events

import (
	"fmt"

	"github.com/cloudevents/sdk-go/v2/event"
)

// CloudEvent returns ev as a CloudEvents 1.0 event: id, source, type,
// subject and time from ev, data as application/json, and the
// partitionkey extension set to ev.Key.
func (ev Event) CloudEvent() (event.Event, error) {
	ce := event.New(event.CloudEventsVersionV1)
	ce.SetID(ev.ID.String())
	ce.SetSource(ev.Source)
	ce.SetType(ev.Type)
	ce.SetSubject(ev.Subject)
	ce.SetTime(ev.Time)
	ce.SetExtension(ExtPartitionKey, ev.Key)
	// A json.RawMessage (not a []byte) is stored as JSON, not as base64.
	if err := ce.SetData(event.ApplicationJSON, ev.Data); err != nil {
		return event.Event{}, fmt.Errorf("events: %s data: %w", ev.Type, err)
	}
	if err := ce.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("events: %s: %w", ev.Type, err)
	}
	return ce, nil
}
