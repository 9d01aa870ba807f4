package task

import (
	"errors"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/httpx/httpxtest"
	"github.com/taskfn/taskfn/shared/pg"
)

// FuzzPatch drives the request bodies of POST /tasks (ParsePatch, then
// Draft) and PATCH /tasks/{id} (ParsePatch, then Apply to a task): any
// body is refused with a 4xx (400 unreadable, 422 invalid fields) or gives
// a task that Validate passes and PostgreSQL can store, so that nothing a
// client sends reaches the database to fail there as a 500.
func FuzzPatch(f *testing.F) {
	for _, b := range []string{
		// TestParsePatchAndApply's bodies.
		`{}`, `{"status":"done"}`, `{"due_at":null,"assignee_id":null,"labels":null,"description":null}`,
		`{"due_at":"2027-05-01T10:00:00.1234567+02:00"}`, `{"labels":["x","y"]}`, `{"title":null}`,
		`{"priority":null}`, `{"labels":"a","title":1}`, `{"id":"x","version":2}`, `{"title":"a\u0007b"}`,
		`{"description":"a\nb"}`, `{"titel":"x"}`, `nope`, `null`, `[]`, `{} {}`,
		// A full create, and edges of the limits.
		`{"title":"Ship it","description":"d","status":"in_progress","priority":"urgent","due_at":"2026-12-01T17:00:00Z","assignee_id":"bob","labels":["ops","ui"]}`,
		`{"title":"\u0000"}`, `{"labels":["a","a"]}`, `{"labels":[" "]}`, `{"assignee_id":""}`, `{"title":"\ud800"}`,
		`{"due_at":"0000-01-01T00:00:00Z"}`, `{"due_at":"9999-12-31T23:59:59.999999999-23:59"}`, `{"due_at":1}`,
		`{"title":"x","title":null}`, `{"status":"Done"}`, `{"labels":[null]}`, `{"description":"\r\t\n\u2028"}`,
	} {
		f.Add([]byte(b))
	}
	due := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	assignee := "dave"
	cur := Task{Title: "t", Description: "d", Status: StatusTodo, Priority: PriorityLow, DueAt: &due, AssigneeID: &assignee, Labels: []string{"a"}, OwnerID: "carol", Version: 3}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePatch(body)
		if httpxtest.Want4xx(t, err, body) != 0 {
			var ve *errs.ValidationError
			if errs.KindOf(err) != errs.Invalid && !errors.As(err, &ve) {
				t.Fatalf("%q: %v is neither a syntax nor a validation error", body, err)
			}
			return
		}
		created, err := Draft(p, "carol")
		if httpxtest.Want4xx(t, err, body) == 0 {
			storable(t, body, created)
		}
		next, bad := p.Apply(cur)
		if httpxtest.Want4xx(t, errs.Validation(bad...), body) == 0 {
			storable(t, body, next)
		}
	})
}

// storable fails t unless tk is what the tasks table holds: valid by
// Validate (which the table's CHECK constraints repeat) and text
// PostgreSQL takes.
func storable(t *testing.T, body []byte, tk Task) {
	t.Helper()
	if bad := Validate(tk); len(bad) > 0 {
		t.Fatalf("%q gives an invalid task: %v", body, bad)
	}
	texts := append([]string{tk.Title, tk.Description, tk.OwnerID}, tk.Labels...)
	if tk.AssigneeID != nil {
		texts = append(texts, *tk.AssigneeID)
	}
	for _, s := range texts {
		if !pg.TextOK(s) {
			t.Fatalf("%q gives text %q the database cannot take", body, s)
		}
	}
	if tk.DueAt != nil && (tk.DueAt.Location() != time.UTC || tk.DueAt.Nanosecond()%1000 != 0) {
		t.Fatalf("%q gives due_at %v, not UTC microseconds", body, tk.DueAt)
	}
}
