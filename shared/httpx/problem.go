// Package httpx holds what every taskfn HTTP function shares: RFC 9457
// problem responses, JSON decoding rules, request middleware and the server
// lifecycle Knative expects.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/taskfn/taskfn/shared/errs"
)

// ProblemBase prefixes every problem "type": the types are stable identifiers,
// listed in openapi.yaml (components.schemas.Problem) and described by the
// responses there that use them.
const ProblemBase = "https://taskfn.dev/problems/"

// Problem is an RFC 9457 problem detail. It is also an error, so handlers
// return it and one place renders it.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Errors   []errs.FieldError `json:"errors,omitempty"`
	// ErrorsOmitted counts the invalid fields beyond those listed.
	ErrorsOmitted int `json:"errors_omitted,omitempty"`

	// Header is added to the response (WWW-Authenticate, Allow, Retry-After).
	Header http.Header `json:"-"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// NewProblem builds a problem of the given slug ("validation", "not-found").
func NewProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemBase + slug, Title: title, Status: status, Detail: detail}
}

// The problems every function can answer. Slugs are part of the API.
func BadRequest(detail string) *Problem {
	return NewProblem(http.StatusBadRequest, "bad-request", "Bad request", detail)
}

func NotFound() *Problem {
	return NewProblem(http.StatusNotFound, "not-found", "Not found", "")
}

func Forbidden(detail string) *Problem {
	return NewProblem(http.StatusForbidden, "forbidden", "Forbidden", detail)
}

func Validation(fields ...errs.FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, "validation", "Validation failed", "the request body has invalid fields")
	p.Errors = fields
	return p
}

func PreconditionFailed(detail string) *Problem {
	return NewProblem(http.StatusPreconditionFailed, "precondition-failed", "Precondition failed", detail)
}

func TooLarge(limit int64) *Problem {
	return NewProblem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
		fmt.Sprintf("the body must not exceed %d bytes", limit))
}

func UnsupportedMediaType(want string) *Problem {
	return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
		"the body must be "+want)
}

func Unavailable(detail string) *Problem {
	return NewProblem(http.StatusServiceUnavailable, "unavailable", "Service unavailable", detail)
}

func Internal() *Problem {
	return NewProblem(http.StatusInternalServerError, "internal", "Internal server error", "")
}

// maxDetail bounds a problem's detail as written. A detail may quote the
// request (an unknown field's name, an event's type or content type), and
// a 1 MiB name must not come back whole: ours are under 200 bytes.
const maxDetail = 1 << 10

// WriteProblem renders p as application/problem+json, its detail cut to
// maxDetail bytes.
func WriteProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	for k, vs := range p.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if (p.Instance == "" && r != nil) || len(p.Detail) > maxDetail {
		cp := *p // p may be shared
		if cp.Instance == "" && r != nil {
			cp.Instance = r.URL.Path
		}
		cp.Detail = clip(cp.Detail, maxDetail)
		p = &cp
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// clip returns s cut to at most n bytes on a rune boundary, ending in "…"
// when it was cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const more = "…"
	cut := n - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// AsProblem returns the *Problem in err's chain, or nil.
func AsProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}
