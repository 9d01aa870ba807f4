package field_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"unicode/utf8"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/pg"
)

// FuzzParseInput drives a definition's body (POST and PATCH
// /projects/{key}/fields) through ParseInput and Draft: any bytes are a
// 400 or a 422, or a definition fit for the database.
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{
		`{"name":"severity","type":"select","options":[{"name":"low"},{"name":"high"}],"required":true}`,
		`{"name":"estimate","type":"number"}`, `{"name":"x","type":"nope"}`, `{"name":"","type":"text"}`,
		`{"name":"s","type":"select","options":[{"name":"a"},{"name":"a"}]}`, `{"id":1}`, `[]`, `{"name":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := field.ParseInput(body)
		if err != nil {
			if !refusal(err) {
				t.Fatalf("ParseInput: not a 400 or 422: %v", err)
			}
			return
		}
		d, err := field.Draft(in, "web", "alice")
		if err != nil {
			var ve *errs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Draft: not a 422: %v", err)
			}
			return
		}
		if !d.Type.Valid() || d.Name == "" || utf8.RuneCountInString(d.Name) > field.MaxName || !pg.TextOK(d.Name) {
			t.Fatalf("Draft accepted %+v", d)
		}
		if !d.Type.HasOptions() && len(d.Options) > 0 || len(d.Options) > field.MaxOptions {
			t.Fatalf("Draft accepted options %+v for a %s", d.Options, d.Type)
		}
		names := map[string]bool{}
		for _, o := range d.Options {
			if o.Name == "" || !pg.TextOK(o.Name) || names[o.Name] {
				t.Fatalf("Draft accepted option %+v of %+v", o, d.Options)
			}
			names[o.Name] = true
		}
	})
}

// fuzzSet defines one field of every type.
var fuzzSet = field.Set{
	{ID: 1, Name: "text", Type: field.Text},
	{ID: 2, Name: "number", Type: field.Number},
	{ID: 3, Name: "date", Type: field.Date},
	{ID: 4, Name: "datetime", Type: field.DateTime},
	{ID: 5, Name: "checkbox", Type: field.Checkbox},
	{ID: 6, Name: "url", Type: field.URL},
	{ID: 7, Name: "user", Type: field.User},
	{ID: 8, Name: "select", Type: field.Select, Options: []field.Option{{ID: "opt_a", Name: "a"}, {ID: "opt_b", Name: "b"}}},
	{ID: 9, Name: "multi", Type: field.MultiSelect, Options: []field.Option{{ID: "opt_x", Name: "x"}, {ID: "opt_y", Name: "y"}}},
}

// FuzzApply drives the values of a task's `fields` (create and PATCH)
// through Set.Apply: a refusal is a 422, and what is accepted is keyed by
// the set's ids, is fit for the database, and shown and applied again
// gives the same stored values (the stored form is the normal form).
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		`{"text":"hi","number":1.5,"date":"2026-02-28","datetime":"2026-12-07T10:00:00+02:00","checkbox":true}`,
		`{"url":"https://example.com/a","user":"alice","select":"a","multi":["y","x"]}`,
		`{"select":"opt_b","multi":[]}`, `{"number":"1"}`, `{"date":"2026-02-30"}`, `{"url":"javascript:x"}`,
		`{"nope":1}`, `{"text":null}`, `{"multi":["x","x"]}`, `{"number":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var patch map[string]json.RawMessage
		if json.Unmarshal(body, &patch) != nil || patch == nil {
			return // the task body's own decoding refuses it before
		}
		stored, err := fuzzSet.Apply(map[string]json.RawMessage{}, patch, true)
		if err != nil {
			var ve *errs.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Apply: not a 422: %v", err)
			}
			return
		}
		for k, v := range stored {
			if !json.Valid(v) || !pg.TextOK(string(v)) {
				t.Fatalf("stored %s = %q", k, v)
			}
		}
		shown := fuzzSet.Present(stored)
		if len(shown) != len(stored) {
			t.Fatalf("stored %v shown as %v", stored, shown)
		}
		again, err := fuzzSet.Apply(map[string]json.RawMessage{}, shown, true)
		if err != nil {
			t.Fatalf("what Present shows is refused: %v (shown %v)", err, shown)
		}
		if !maps.EqualFunc(stored, again, func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("stored %v, applied again %v", stored, again)
		}
	})
}

// refusal: a 400 (errs.Invalid) or a 422 (*errs.ValidationError).
func refusal(err error) bool {
	var ve *errs.ValidationError
	return errs.KindOf(err) == errs.Invalid || errors.As(err, &ve)
}
