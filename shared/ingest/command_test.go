package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/ingest"
	"github.com/taskfn/taskfn/shared/pg"
)

// The published schemas and the parser agree: what one takes the other
// takes, what one refuses the other refuses.
func TestParseAgreesWithSchemas(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	tests := []struct {
		name, typ, data string
		ok              bool
	}{
		{"create, minimal", events.CommandTaskCreate, `{"title":"x"}`, true},
		{"create, full", events.CommandTaskCreate, `{"title":"x","description":"d","status":"blocked","priority":"high","due_at":"2027-01-01T00:00:00Z","assignee_id":"bob","labels":["a"],"project":"ops"}`, true},
		{"create, no title", events.CommandTaskCreate, `{"priority":"high"}`, false},
		{"create, unknown field", events.CommandTaskCreate, `{"title":"x","colour":"red"}`, false},
		{"create, bad priority", events.CommandTaskCreate, `{"title":"x","priority":"asap"}`, false},
		{"update", events.CommandTaskUpdate, `{"task_id":"` + id + `","expected_version":3,"patch":{"status":"done","due_at":null}}`, true},
		{"update, a recurrence alone (the task has a due date)", events.CommandTaskUpdate, `{"task_id":"` + id + `","patch":{"recurrence":"FREQ=WEEKLY"}}`, true},
		{"update, no patch", events.CommandTaskUpdate, `{"task_id":"` + id + `"}`, false},
		{"update, bad version", events.CommandTaskUpdate, `{"task_id":"` + id + `","expected_version":0,"patch":{}}`, false},
		{"update, bad id", events.CommandTaskUpdate, `{"task_id":"nope","patch":{}}`, false},
		{"comment", events.CommandTaskComment, `{"task_id":"` + id + `","body":"**hi**"}`, true},
		{"comment, blank", events.CommandTaskComment, `{"task_id":"` + id + `","body":""}`, false},
		{"comment, with a version", events.CommandTaskComment, `{"task_id":"` + id + `","body":"x","expected_version":1}`, false},
		{"close", events.CommandTaskClose, `{"task_id":"` + id + `"}`, true},
		{"close, cancelled", events.CommandTaskClose, `{"task_id":"` + id + `","status":"cancelled"}`, true},
		{"close, reopen", events.CommandTaskClose, `{"task_id":"` + id + `","status":"todo"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := command(t, tt.typ, "", json.RawMessage(tt.data))
			_, perr := ingest.Parse(ev)
			serr := eventstest.Validate(tt.typ, []byte(tt.data))
			if (perr == nil) != tt.ok || (serr == nil) != tt.ok {
				t.Errorf("parse: %v; schema: %v; want ok=%v", perr, serr, tt.ok)
			}
		})
	}
}

// FuzzParse drives a command's reading (events.ReadBatch, ingest.ParseAll)
// with any type and data, in binary mode: a refusal is a 4xx, never a 5xx,
// and what is accepted is text PostgreSQL stores.
func FuzzParse(f *testing.F) {
	id := uuid.NewString()
	for _, c := range []struct{ typ, ref, data string }{
		{events.CommandTaskCreate, "", `{"title":"x","labels":["a"]}`},
		{events.CommandTaskCreate, "am:1", `{"title":"x","project":"ops","due_at":"2027-01-01T00:00:00Z"}`},
		{events.CommandTaskUpdate, "", `{"task_id":"` + id + `","expected_version":3,"patch":{"status":"done"}}`},
		{events.CommandTaskComment, "am:1", `{"body":"hi"}`},
		{events.CommandTaskClose, "", `{"task_id":"` + id + `","status":"cancelled"}`},
		{events.CommandTaskClose, "", `[]`},
		{"x", "\x00", `{"title":"\u0000"}`},
	} {
		f.Add(c.typ, c.ref, []byte(c.data))
	}
	f.Fuzz(func(t *testing.T, typ, ref string, data []byte) {
		r := httptest.NewRequest(http.MethodPost, "/events", bytes.NewReader(data))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Ce-Specversion", "1.0")
		r.Header.Set("Ce-Id", "1")
		r.Header.Set("Ce-Source", "/fuzz")
		if typ != "" && validHeader(typ) {
			r.Header.Set("Ce-Type", typ)
		}
		if ref != "" && validHeader(ref) {
			r.Header.Set("Ce-Externalref", ref)
		}
		evs, batch, err := events.ReadBatch(httptest.NewRecorder(), r, httpx.MaxBody, ingest.MaxBatch)
		if err == nil {
			var cmds []ingest.Command
			cmds, err = ingest.ParseAll(evs, batch)
			for _, c := range cmds {
				for _, s := range []string{c.Ref, c.Body, c.Patch.Title.Value, c.Patch.Description.Value, c.Patch.Project.Value} {
					if !pg.TextOK(s) {
						t.Fatalf("accepted text PostgreSQL refuses: %q", s)
					}
				}
			}
		}
		if err != nil {
			if p := httpx.ProblemOf(context.Background(), err); p.Status < 400 || p.Status > 499 {
				t.Fatalf("refused with %d: %v", p.Status, err)
			}
		}
	})
}

// validHeader: what net/http lets through as a header value.
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
