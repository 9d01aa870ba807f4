package httpx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/errs"
)

// ProblemOf is the one table every route and sink answers through: each
// kind, wrapped or not, gives its status, type and Retry-After; a
// transient database failure (a deadlock included, which the cleanup tick
// once answered 500) is a 503; anything unknown a 500 that shows nothing.
func TestProblemOf(t *testing.T) {
	t.Parallel()
	notFound := errs.New(errs.NotFound, "thing not found", "")
	tooMany := errs.New(errs.TooMany, "too many things", "wait").Problem("too-many-things", "Too many things").After(30 * time.Second)
	tests := []struct {
		name       string
		err        error
		status     int
		typ        string
		detail     string
		retryAfter string
	}{
		{"problem as it is", BadRequest("no"), 400, "bad-request", "no", ""},
		{"not found, wrapped", fmt.Errorf("loading: %w", notFound), 404, "not-found", "", ""},
		{"syntax", errs.Syntax("the body is not JSON"), 400, "bad-request", "the body is not JSON", ""},
		{"forbidden", errs.New(errs.Forbidden, "forbidden: x", "only the owner"), 403, "forbidden", "only the owner", ""},
		{"conflict", errs.New(errs.Conflict, "busy", "in use"), 409, "conflict", "in use", ""},
		{"precondition", errs.New(errs.Precondition, "changed", "fetch again"), 412, "precondition-failed", "fetch again", ""},
		{"too many, own type", tooMany, 429, "too-many-things", "wait", "30"},
		{"unavailable: at least a second", errs.New(errs.Unavailable, "down", "later"), 503, "unavailable", "later", "1"},
		{"unavailable, own delay rounded up", errs.New(errs.Unavailable, "down", "later").After(1500 * time.Millisecond), 503, "unavailable", "later", "2"},
		{"poison: the wrapping says why", fmt.Errorf("%w: no report_id", errs.ErrPoison), 400, "unprocessable-event", "unprocessable event: no report_id", ""},
		{"deadlock", fmt.Errorf("cleanup: %w", &pgconn.PgError{Code: "40P01"}), 503, "unavailable", "the database is busy or unreachable; retry shortly", "1"},
		{"deadline", context.DeadlineExceeded, 503, "unavailable", "the database is busy or unreachable; retry shortly", "1"},
		{"unknown", errors.New("boom: secret detail"), 500, "internal", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ProblemOf(context.Background(), tt.err)
			if p.Status != tt.status || p.Type != ProblemBase+tt.typ || p.Detail != tt.detail {
				t.Errorf("got %d %s %q, want %d %s %q", p.Status, p.Type, p.Detail, tt.status, tt.typ, tt.detail)
			}
			if got := http.Header(p.Header).Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// A validation error lists at most MaxFieldErrors fields and counts the
// rest, so a body of a million bad labels cannot answer with a million.
func TestProblemOfValidationIsCapped(t *testing.T) {
	t.Parallel()
	var f errs.Fields
	for i := range errs.MaxFieldErrors + 7 {
		f.Add(fmt.Sprintf("labels[%d]", i), "must not be blank")
	}
	p := ProblemOf(context.Background(), f.Err())
	if p.Status != http.StatusUnprocessableEntity || len(p.Errors) != errs.MaxFieldErrors || p.ErrorsOmitted != 7 {
		t.Errorf("got %d with %d errors, %d omitted; want 422 with %d, 7 omitted", p.Status, len(p.Errors), p.ErrorsOmitted, errs.MaxFieldErrors)
	}
	if p.Errors[0].Field != "labels[0]" {
		t.Errorf("first error %+v: the first added must be kept", p.Errors[0])
	}
}
