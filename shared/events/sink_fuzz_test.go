package events_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/taskfn/taskfn/shared/events"
)

// maxFuzzEvent is the sinks' smallest body limit (build-report, cleanup
// and relay-outbox read 64 KiB).
const maxFuzzEvent = 64 << 10

// FuzzSinkHandler drives the reading of a CloudEvent, as every sink and
// tick does it (events.SinkHandler, events.Read), with a handler that
// accepts whatever it is given: any request, in binary mode (ce- headers)
// or structured mode (a JSON body), is answered 204 or a 4xx (never
// redelivered), never a 5xx. An event let through holds context
// attributes that are CloudEvents Strings (no control characters, valid
// UTF-8), so that a sink can store its id (notify's processed_events).
func FuzzSinkHandler(f *testing.F) {
	const id, source = "0190a4c2-7b1e-7c3d-9e4f-123456789abc", "/taskfn/tasks"
	data := `{"actor":"alice","task":{"id":"` + id + `","owner_id":"alice"}}`
	for _, c := range []struct{ contentType, specversion, id, source, typ, body string }{
		// Binary mode, as a KafkaSource and PingSource deliver.
		{"application/json", "1.0", id, source, events.TaskCreated, data},
		{"", "1.0", id, "/apis/v1/namespaces/taskfn/pingsources/relay-outbox", events.PingSourceType, ``},
		{"application/json", "0.3", id, source, events.TaskCreated, data},
		{"application/json", "2.0", id, source, events.TaskCreated, data},
		{"application/json", "1.0", "", source, events.TaskCreated, data},
		{"application/json", "1.0", id, "", events.TaskCreated, data},
		{"application/json", "1.0", id, "::not a uri", "", data},
		{"text/plain; charset", "1.0", " ", source, events.TaskCreated, "\xff"},
		// Structured mode.
		{"application/cloudevents+json", "", "", "", "", `{"specversion":"1.0","id":"` + id + `","source":"` + source + `","type":"` + events.TaskCreated + `","datacontenttype":"application/json","data":` + data + `}`},
		{"application/cloudevents+json; charset=utf-8", "", "", "", "", `{"specversion":"1.0","id":"x","source":"/s","type":"t","data_base64":"eyJ9"}`},
		{"application/cloudevents+json", "", "", "", "", `{"specversion":"1.0","id":"x","source":"/s","type":"t","time":"yesterday"}`},
		{"application/cloudevents+json", "", "", "", "", `{"specversion":"1.0","id":"x","source":"/s","type":"t","subject":"a","ext":{"a":1}}`},
		{"application/cloudevents+json", "", "", "", "", `{"specversion":"1.0",`},
		{"application/cloudevents-batch+json", "", "", "", "", `[{"specversion":"1.0","id":"x","source":"/s","type":"t"}]`},
		{"application/json", "", "", "", "", `{}`},
		{"application/json", "1.0", strings.Repeat("i", events.MaxIDBytes+1), source, events.TaskCreated, data},
	} {
		f.Add(c.contentType, c.specversion, c.id, c.source, c.typ, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, contentType, specversion, id, source, typ string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		for name, v := range map[string]string{"Content-Type": contentType, "Ce-Specversion": specversion, "Ce-Id": id, "Ce-Source": source, "Ce-Type": typ} {
			if v == "" {
				continue
			}
			if !headerValue(v) {
				return // net/http refuses the request before any handler sees it
			}
			r.Header.Set(name, v)
		}
		var got *event.Event
		h := events.SinkHandler(maxFuzzEvent, func(_ context.Context, ev event.Event) error {
			got = &ev
			return nil
		})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusNoContent:
			if got == nil {
				t.Fatal("204 without handling an event")
			}
		case w.Code >= 400 && w.Code <= 499:
			if got != nil {
				t.Fatalf("%d after handling an event", w.Code)
			}
			return
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("an invalid event handled: %v", err)
		}
		if len(got.ID()) > events.MaxIDBytes {
			t.Fatalf("an id of %d bytes handled", len(got.ID()))
		}
		for name, s := range map[string]string{"id": got.ID(), "type": got.Type(), "source": got.Source(), "subject": got.Subject()} {
			if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
				t.Fatalf("event %s %q handled: CloudEvents strings hold no control characters", name, s)
			}
		}
	})
}

// headerValue reports whether net/http's server takes v as a header
// value: no control characters but tab (RFC 9110 5.5).
func headerValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
