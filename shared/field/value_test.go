package field_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/field"
)

// set is a project's fields as the tests use them: one of each type, ids
// 1 to 9, and a required one (10).
func set() field.Set {
	opts := []field.Option{{ID: "opt_a", Name: "low"}, {ID: "opt_b", Name: "medium"}, {ID: "opt_c", Name: "high"}}
	return field.Set{
		{ID: 1, Name: "Notes", Type: field.Text},
		{ID: 2, Name: "estimate", Type: field.Number},
		{ID: 3, Name: "start", Type: field.Date},
		{ID: 4, Name: "at", Type: field.DateTime},
		{ID: 5, Name: "done", Type: field.Checkbox},
		{ID: 6, Name: "link", Type: field.URL},
		{ID: 7, Name: "reviewer", Type: field.User},
		{ID: 8, Name: "severity", Type: field.Select, Options: opts},
		{ID: 9, Name: "tags", Type: field.MultiSelect, Options: opts},
		{ID: 10, Name: "team", Type: field.Text, Required: true},
	}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// TestValues is every type's validation: a value on its own (the required
// field given), and the stored form it becomes.
func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		field string
		value string
		want  string // stored form; "" when refused
		bad   string // a word of the detail when refused
	}{
		{"text", "notes", `"hello\nworld"`, `"hello\nworld"`, ""},
		{"text at the limit", "notes", `"` + strings.Repeat("é", field.MaxText) + `"`, `"` + strings.Repeat("é", field.MaxText) + `"`, ""},
		{"text too long", "notes", `"` + strings.Repeat("a", field.MaxText+1) + `"`, "", "at most"},
		{"text empty", "notes", `""`, "", "empty"},
		{"text control", "notes", `"a\u0007"`, "", "control"},
		{"text NUL", "notes", `"a\u0000"`, "", "NUL"},
		{"text a number", "notes", `12`, "", "string"},
		{"number int", "estimate", `3`, `3`, ""},
		{"number float", "estimate", `2.50`, `2.5`, ""},
		{"number negative exp", "estimate", `-1e3`, `-1000`, ""},
		{"number as string", "estimate", `"3"`, "", "number"},
		{"number too large", "estimate", `1e400`, "", "finite"},
		{"number bool", "estimate", `true`, "", "number"},
		{"date", "start", `"2026-02-28"`, `"2026-02-28"`, ""},
		{"date leap day", "start", `"2028-02-29"`, `"2028-02-29"`, ""},
		{"date Feb 30", "start", `"2026-02-30"`, "", "exists"},
		{"date with time", "start", `"2026-02-01T00:00:00Z"`, "", "YYYY-MM-DD"},
		{"date short", "start", `"2026-2-1"`, "", "YYYY-MM-DD"},
		{"datetime UTC", "at", `"2026-12-01T17:00:00Z"`, `"2026-12-01T17:00:00.000000Z"`, ""},
		{"datetime offset to UTC", "at", `"2026-12-01T17:00:00.5+02:00"`, `"2026-12-01T15:00:00.500000Z"`, ""},
		{"datetime nanos cut", "at", `"2026-12-01T17:00:00.123456789Z"`, `"2026-12-01T17:00:00.123456Z"`, ""},
		{"datetime no zone", "at", `"2026-12-01T17:00:00"`, "", "RFC 3339"},
		{"datetime a date", "at", `"2026-12-01"`, "", "RFC 3339"},
		{"checkbox true", "done", `true`, `true`, ""},
		{"checkbox false", "done", `false`, `false`, ""},
		{"checkbox string", "done", `"true"`, "", "true or false"},
		{"url https", "link", `"https://example.com/a?b=c"`, `"https://example.com/a?b=c"`, ""},
		{"url http upper scheme", "link", `"HTTP://example.com"`, `"HTTP://example.com"`, ""},
		{"url javascript", "link", `"javascript:alert(1)"`, "", "http"},
		{"url relative", "link", `"/a/b"`, "", "http"},
		{"url ftp", "link", `"ftp://example.com"`, "", "http"},
		{"url space", "link", `"https://exa mple.com"`, "", "spaces"},
		{"url too long", "link", `"https://example.com/` + strings.Repeat("a", field.MaxURL) + `"`, "", "at most"},
		{"user", "reviewer", `"f:abc:alice"`, `"f:abc:alice"`, ""},
		{"user blank", "reviewer", `"  "`, "", "subject"},
		{"user too long", "reviewer", `"` + strings.Repeat("a", field.MaxUser+1) + `"`, "", "subject"},
		{"select", "severity", `"opt_b"`, `"opt_b"`, ""},
		{"select unknown option", "severity", `"opt_x"`, "", "options"},
		{"select by name", "severity", `"medium"`, "", "options"},
		{"select array", "severity", `["opt_b"]`, "", "string"},
		{"multi sorted by option order", "tags", `["opt_c","opt_a"]`, `["opt_a","opt_c"]`, ""},
		{"multi empty", "tags", `[]`, `[]`, ""},
		{"multi duplicate", "tags", `["opt_a","opt_a"]`, "", "twice"},
		{"multi unknown", "tags", `["opt_a","opt_x"]`, "", "options"},
		{"multi a string", "tags", `"opt_a"`, "", "array"},
		{"field name any case", "SEVERITY", `"opt_a"`, `"opt_a"`, ""},
		{"unknown field", "nope", `1`, "", "not a field"},
	}
	s := set()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			patch := map[string]json.RawMessage{tt.field: raw(tt.value), "team": raw(`"core"`)}
			got, err := s.Apply(nil, patch, true)
			if tt.want == "" {
				var ve *errs.ValidationError
				if !errors.As(err, &ve) || len(ve.Fields) != 1 {
					t.Fatalf("Apply = %v, %v; want one field error", got, err)
				}
				if ve.Fields[0].Field != "fields."+tt.field || !strings.Contains(ve.Fields[0].Detail, tt.bad) {
					t.Errorf("error %+v, want fields.%s and %q", ve.Fields[0], tt.field, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d, _ := s.ByName(tt.field)
			if string(got[d.Key()]) != tt.want {
				t.Errorf("stored %s, want %s", got[d.Key()], tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	stored := map[string]json.RawMessage{"1": raw(`"old"`), "2": raw(`5`), "10": raw(`"core"`), "99": raw(`"of a deleted field"`)}
	tests := []struct {
		name   string
		stored map[string]json.RawMessage
		patch  map[string]json.RawMessage
		create bool
		want   map[string]json.RawMessage
		bad    []string // the fields named, in order
	}{
		{name: "merge: set, clear, keep; deleted dropped", stored: stored,
			patch: map[string]json.RawMessage{"notes": raw(`"new"`), "estimate": raw(`null`), "done": raw(`true`)},
			want:  map[string]json.RawMessage{"1": raw(`"new"`), "5": raw(`true`), "10": raw(`"core"`)}},
		{name: "empty patch keeps", stored: stored, patch: nil,
			want: map[string]json.RawMessage{"1": raw(`"old"`), "2": raw(`5`), "10": raw(`"core"`)}},
		{name: "create without required", create: true,
			patch: map[string]json.RawMessage{"notes": raw(`"x"`)}, bad: []string{"fields.team"}},
		{name: "create with required null", create: true,
			patch: map[string]json.RawMessage{"team": raw(`null`)}, bad: []string{"fields.team"}},
		{name: "update cannot clear required", stored: stored,
			patch: map[string]json.RawMessage{"Team": raw(`null`)}, bad: []string{"fields.Team"}},
		{name: "update of a task made before the required field",
			stored: map[string]json.RawMessage{"1": raw(`"old"`)}, patch: map[string]json.RawMessage{"notes": raw(`"x"`)},
			want: map[string]json.RawMessage{"1": raw(`"x"`)}},
		{name: "every bad field in one error", create: true,
			patch: map[string]json.RawMessage{"estimate": raw(`"3"`), "nope": raw(`1`), "start": raw(`"2026-02-30"`)},
			bad:   []string{"fields.estimate", "fields.nope", "fields.start", "fields.team"}},
		{name: "one field named twice", stored: stored,
			patch: map[string]json.RawMessage{"notes": raw(`"a"`), "NOTES": raw(`"b"`)}, bad: []string{"fields.notes"}},
	}
	s := set()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Apply(tt.stored, tt.patch, tt.create)
			if tt.bad != nil {
				var ve *errs.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Apply = %v, %v; want a validation error", got, err)
				}
				var names []string
				for _, f := range ve.Fields {
					names = append(names, f.Field)
				}
				if diff := cmp.Diff(tt.bad, names); diff != "" {
					t.Errorf("fields named (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("stored (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPresent(t *testing.T) {
	t.Parallel()
	s := set()
	got := s.Present(map[string]json.RawMessage{"1": raw(`"x"`), "8": raw(`"opt_a"`), "99": raw(`1`), "bogus": raw(`1`)})
	want := map[string]json.RawMessage{"Notes": raw(`"x"`), "severity": raw(`"opt_a"`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Present (-want +got):\n%s", diff)
	}
	if empty := s.Present(nil); empty == nil || len(empty) != 0 {
		t.Errorf("Present(nil) = %#v, want an empty map", empty)
	}
}

func TestKeep(t *testing.T) {
	t.Parallel()
	from := set()
	to := field.Set{
		{ID: 21, Name: "notes", Type: field.Text},    // same name, other case: kept
		{ID: 22, Name: "estimate", Type: field.Text}, // other type: dropped
		{ID: 28, Name: "Severity", Type: field.Select, Options: []field.Option{{ID: "opt_h", Name: "HIGH"}, {ID: "opt_l", Name: "low"}}},
		{ID: 29, Name: "tags", Type: field.MultiSelect, Options: []field.Option{{ID: "opt_z", Name: "high"}, {ID: "opt_y", Name: "low"}}},
		{ID: 25, Name: "done", Type: field.Checkbox},
	}
	tests := []struct {
		name    string
		stored  map[string]json.RawMessage
		kept    map[string]json.RawMessage
		dropped []string
	}{
		{"nothing stored", nil, map[string]json.RawMessage{}, nil},
		{"by name and type, re-keyed",
			map[string]json.RawMessage{"1": raw(`"x"`), "2": raw(`3`), "5": raw(`false`), "7": raw(`"bob"`), "99": raw(`1`)},
			map[string]json.RawMessage{"21": raw(`"x"`), "25": raw(`false`)},
			[]string{"estimate", "reviewer"}},
		{"select by option name, whatever the case",
			map[string]json.RawMessage{"8": raw(`"opt_c"`)},
			map[string]json.RawMessage{"28": raw(`"opt_h"`)}, nil},
		{"select option missing in target",
			map[string]json.RawMessage{"8": raw(`"opt_b"`)},
			map[string]json.RawMessage{}, []string{"severity"}},
		{"multi all matched, in the target's order",
			map[string]json.RawMessage{"9": raw(`["opt_a","opt_c"]`)},
			map[string]json.RawMessage{"29": raw(`["opt_z","opt_y"]`)}, nil},
		{"multi partly matched keeps the matched, names the field",
			map[string]json.RawMessage{"9": raw(`["opt_a","opt_b"]`)},
			map[string]json.RawMessage{"29": raw(`["opt_y"]`)}, []string{"tags"}},
		{"multi none matched",
			map[string]json.RawMessage{"9": raw(`["opt_b"]`)},
			map[string]json.RawMessage{}, []string{"tags"}},
		{"multi empty stays empty",
			map[string]json.RawMessage{"9": raw(`[]`)},
			map[string]json.RawMessage{"29": raw(`[]`)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kept, dropped := from.Keep(tt.stored, to)
			if diff := cmp.Diff(tt.kept, kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.dropped, dropped); diff != "" {
				t.Errorf("dropped (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetLookups(t *testing.T) {
	t.Parallel()
	s := set()
	if d, ok := s.ByName("notes"); !ok || d.ID != 1 {
		t.Errorf("ByName(notes) = %v, %t", d, ok)
	}
	if _, ok := s.ByName("note"); ok {
		t.Error("ByName(note) found a field")
	}
	if d, ok := s.ByID(9); !ok || d.Name != "tags" {
		t.Errorf("ByID(9) = %v, %t", d, ok)
	}
	if _, ok := s.ByID(99); ok {
		t.Error("ByID(99) found a field")
	}
}
