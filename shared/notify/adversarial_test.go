package notify_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/events/eventstest"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/notify"
	"github.com/taskfn/taskfn/shared/pgtest"
)

// TestAdversarialBodies holds the notify sink to a small answer and a
// bounded allocation for events built to multiply either (issue #21). Not
// parallel: the allocations measured are the process's.
func TestAdversarialBodies(t *testing.T) {
	store, err := notify.NewStore(pgtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := notify.NewSink(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	const size = 1 << 20 // the sink's limit
	typ := events.TaskStatusChanged
	task := `{"id":"` + uuid.NewString() + `","owner_id":"alice","title":"t"`
	binary := func(typ, data string) func() *http.Request {
		return func() *http.Request { return eventstest.Binary(typ, "application/json", data) }
	}
	cases := append(eventstest.Adversarial(typ, size), []httpxtest.Case{
		{Name: "blank labels without a task id", Status: 400, Request: binary(typ, httpxtest.Fill(`{"task":{"labels":[`, `"",`, `""]}}`, size))},
		{Name: "labels of objects", Status: 400, Request: binary(typ, httpxtest.Fill(`{"task":{"labels":[`, `{"a":0},`, `{}]}}`, size))},
		{Name: "huge status", Status: 400, Request: binary(typ, httpxtest.Fill(`{"task":`+task+`},"new_status":"done","old_status":"`, `a`, `"}`, size))},
		{Name: "huge description", Status: 400, Request: binary(typ, httpxtest.Fill(`{"old_status":"x","task":`+task+`,"description":"`, `a`, `"}}`, size))},
		{Name: "data nested deep", Status: 400, Request: binary(typ, httpxtest.Nest(`{"task":`, `}`, size))},
		{Name: "huge number", Status: 400, Request: binary(typ, httpxtest.Fill(`{"task":`, `9`, `}`, size))},
		{Name: "a type notify ignores", Status: 204, Request: binary(events.TaskUpdated, `{"a":"`+strings.Repeat("a", size-8)+`"}`)},
	}...)
	httpxtest.CheckBounded(t, sink.Route().Handler, httpxtest.BoundsFor(size), cases, nil)
}
