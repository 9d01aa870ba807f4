// Package mergepatch reads RFC 7396 JSON merge patches into typed fields,
// telling an absent member from a null one, with the error details every
// resource's PATCH gives the same way.
package mergepatch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/taskfn/taskfn/shared/errs"
)

// Field is one member of a JSON merge patch: absent, null, or a value.
type Field[T any] struct {
	Set   bool // present in the document
	Null  bool // present as null
	Value T
}

// Member is one member of a patch document, in Object's order.
type Member struct {
	Name string
	Raw  json.RawMessage
}

// Object decodes body as exactly one JSON object and returns its members
// sorted by name, so error lists come out in a stable order. A body that is
// not one object is an errs.Invalid error. body is what httpx.ReadBody
// returned, which bounds what decoding it can cost.
func Object(body []byte) ([]Member, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var doc map[string]json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		return nil, errs.Syntax("the body is not a JSON object: " + detail(err))
	}
	if doc == nil {
		return nil, errs.Syntax("the body must be a JSON object, not null")
	}
	if dec.More() {
		return nil, errs.Syntax("the body must hold exactly one JSON object")
	}
	members := make([]Member, 0, len(doc))
	for k, v := range doc {
		members = append(members, Member{k, v})
	}
	slices.SortFunc(members, func(a, b Member) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return members, nil
}

// Decode reads raw into f; its error is a field's detail ("must be a string").
func Decode[T any](raw json.RawMessage, f *Field[T]) error {
	f.Set = true
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		f.Null = true
		return nil
	}
	if err := json.Unmarshal(raw, &f.Value); err != nil {
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &te):
			return fmt.Errorf("must be %s", kind(f.Value))
		case errors.As(err, &pe):
			return errors.New("must be an RFC 3339 date-time, e.g. 2026-12-01T17:00:00Z")
		}
		return errors.New("is not valid")
	}
	return nil
}

func kind(v any) string {
	switch v.(type) {
	case []string:
		return "an array of strings"
	case time.Time:
		return "an RFC 3339 date-time string"
	}
	return "a string"
}

func detail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "expected an object, got " + te.Value
	}
	return err.Error()
}
