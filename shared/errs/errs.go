// Package errs is the one set of failures taskfn's packages return, so that
// one table (httpx) turns each into its response: a route's problem+json,
// and for a CloudEvent sink its retry decision (4xx never redelivered, 5xx
// redelivered). Packages declare their sentinels with New and wrap them
// with %w; callers compare with errors.Is as usual. Nothing here knows HTTP.
package errs

import (
	"errors"
	"strings"
	"time"
)

// Kind is what a failure means to the caller, whatever package it is from.
type Kind uint8

const (
	// Invalid: the request can never succeed as it is (400).
	Invalid Kind = iota + 1
	// NotFound: no such object, or one the caller may not see (404).
	NotFound
	// Forbidden: the caller sees the object but may not do this (403).
	Forbidden
	// Conflict: the object's state does not allow it now (409).
	Conflict
	// Precondition: the object changed since the version the caller named (412).
	Precondition
	// TooMany: a quota of the caller's is used up; RetryAfter says when to look again (429).
	TooMany
	// Unavailable: a dependency failed; the same request may succeed later (503).
	Unavailable
	// Poison: a CloudEvent no redelivery can make processable (400, dead-lettered).
	Poison
)

// Error is a failure of a known kind. Detail is shown to the client (the
// problem's detail); Slug and Title, when set, name a problem type more
// specific than the kind's, such as "report-not-ready".
type Error struct {
	Kind       Kind
	Slug       string
	Title      string
	Detail     string
	RetryAfter time.Duration
	msg        string
}

func (e *Error) Error() string { return e.msg }

// New returns a failure of kind whose Error() is msg (for logs and errors.Is
// chains) and whose client-facing detail is detail.
func New(kind Kind, msg, detail string) *Error {
	return &Error{Kind: kind, msg: msg, Detail: detail}
}

// Problem returns e with its problem type named: slug (the stable part of
// the type URI) and title.
func (e *Error) Problem(slug, title string) *Error {
	cp := *e
	cp.Slug, cp.Title = slug, title
	return &cp
}

// After returns e asking the client to retry after d.
func (e *Error) After(d time.Duration) *Error {
	cp := *e
	cp.RetryAfter = d
	return &cp
}

// ErrPoison is the one sentinel of an unprocessable event; sinks wrap it
// with what was wrong.
var ErrPoison = New(Poison, "unprocessable event", "")

// Syntax is a request the server cannot read as the kind of thing it should
// be (not JSON, unknown field, malformed parameter): 400 with detail.
func Syntax(detail string) error { return New(Invalid, detail, detail) }

// MaxFieldErrors bounds the field errors one response lists: a body of a
// million bad labels must not answer with a million errors.
const MaxFieldErrors = 50

// FieldError names one invalid field of a request and what is wrong with it.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// ValidationError lists the invalid fields of a request (422): at most
// MaxFieldErrors of them, and how many more there were.
type ValidationError struct {
	Fields  []FieldError
	Omitted int
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Detail
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

// Fields collects field errors for a ValidationError, keeping the first
// MaxFieldErrors and counting the rest. The zero value is ready to use.
type Fields struct {
	list    []FieldError
	omitted int
}

// Add records that field is invalid for the reason detail.
func (f *Fields) Add(field, detail string) {
	if len(f.list) >= MaxFieldErrors {
		f.omitted++
		return
	}
	f.list = append(f.list, FieldError{field, detail})
}

// Full reports whether further errors would only be counted: a validator
// looping over untrusted input may stop there.
func (f *Fields) Full() bool { return len(f.list) >= MaxFieldErrors }

// Len is the number of errors recorded, listed or counted.
func (f *Fields) Len() int { return len(f.list) + f.omitted }

// List is the errors kept, in the order added.
func (f *Fields) List() []FieldError { return f.list }

// Err is nil when nothing was added, else the *ValidationError.
func (f *Fields) Err() error {
	if f.Len() == 0 {
		return nil
	}
	return &ValidationError{Fields: f.list, Omitted: f.omitted}
}

// Validation returns the *ValidationError of fields (nil for none), capped
// at MaxFieldErrors.
func Validation(fields ...FieldError) error {
	var f Fields
	for _, fe := range fields {
		f.Add(fe.Field, fe.Detail)
	}
	return f.Err()
}

// KindOf returns the kind of the first *Error in err's chain, or 0.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
