package task

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/taskfn/taskfn/shared/errs"
)

func TestParsePatchAndApply(t *testing.T) {
	t.Parallel()
	due := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	assignee := "dave"
	cur := Task{Title: "t", Description: "d", Status: StatusTodo, Priority: PriorityLow, DueAt: &due, AssigneeID: &assignee, Labels: []string{"a"}, OwnerID: "carol"}
	tests := []struct {
		name      string
		body      string
		syntax    bool     // want an errs.Invalid error
		badFields []string // want an *errs.ValidationError naming these
		want      func(Task) Task
	}{
		{name: "empty patch changes nothing", body: `{}`, want: func(t Task) Task { return t }},
		{name: "set status", body: `{"status":"done"}`, want: func(t Task) Task { t.Status = StatusDone; return t }},
		{name: "null clears optional fields", body: `{"due_at":null,"assignee_id":null,"labels":null,"description":null}`,
			want: func(t Task) Task { t.DueAt, t.AssigneeID, t.Labels, t.Description = nil, nil, []string{}, ""; return t }},
		{name: "due_at normalised to UTC µs", body: `{"due_at":"2027-05-01T10:00:00.1234567+02:00"}`,
			want: func(t Task) Task {
				d := time.Date(2027, 5, 1, 8, 0, 0, 123456000, time.UTC)
				t.DueAt = &d
				return t
			}},
		{name: "labels replaced whole", body: `{"labels":["x","y"]}`, want: func(t Task) Task { t.Labels = []string{"x", "y"}; return t }},
		{name: "null title", body: `{"title":null}`, badFields: []string{"title"}},
		{name: "null priority", body: `{"priority":null}`, badFields: []string{"priority"}},
		{name: "wrong types", body: `{"labels":"a","title":1}`, badFields: []string{"labels", "title"}},
		{name: "read-only", body: `{"id":"x","version":2}`, badFields: []string{"id", "version"}},
		{name: "control character in title", body: `{"title":"a\u0007b"}`, badFields: []string{"title"}},
		{name: "newline allowed in description", body: `{"description":"a\nb"}`, want: func(t Task) Task { t.Description = "a\nb"; return t }},
		{name: "unknown field", body: `{"titel":"x"}`, syntax: true},
		{name: "not json", body: `nope`, syntax: true},
		{name: "null document", body: `null`, syntax: true},
		{name: "array", body: `[]`, syntax: true},
		{name: "trailing data", body: `{} {}`, syntax: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePatch([]byte(tc.body))
			var got Task
			if err == nil {
				var bad []errs.FieldError
				got, bad = p.Apply(cur)
				err = errs.Validation(bad...)
			}
			var ve *errs.ValidationError
			switch {
			case tc.syntax:
				if errs.KindOf(err) != errs.Invalid {
					t.Fatalf("err %v, want a syntax error", err)
				}
			case tc.badFields != nil:
				if !errors.As(err, &ve) {
					t.Fatalf("err %v, want a validation error", err)
				}
				var names []string
				for _, f := range ve.Fields {
					names = append(names, f.Field)
				}
				if d := cmp.Diff(tc.badFields, names); d != "" {
					t.Errorf("fields (-want +got):\n%s", d)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(tc.want(cur), got); d != "" {
					t.Errorf("(-want +got):\n%s", d)
				}
			}
		})
	}
	if cur.Labels[0] != "a" || len(cur.Labels) != 1 {
		t.Error("Apply changed its input")
	}
}

func TestDraft(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		valid bool
	}{
		{"title only", `{"title":"x"}`, true},
		{"no title", `{"status":"todo"}`, false},
		{"title of 200 runes", `{"title":"` + strings.Repeat("ü", 200) + `"}`, true},
		{"title of 201 runes", `{"title":"` + strings.Repeat("ü", 201) + `"}`, false},
		{"20 labels", `{"title":"x","labels":[` + labels(20) + `]}`, true},
		{"21 labels", `{"title":"x","labels":[` + labels(21) + `]}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePatch([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			d, err := Draft(p, "owner")
			if (err == nil) != tc.valid {
				t.Fatalf("err %v, valid want %v", err, tc.valid)
			}
			if tc.valid && (d.OwnerID != "owner" || d.Status != StatusTodo || d.Priority != PriorityMedium || d.Labels == nil) {
				t.Errorf("defaults: %+v", d)
			}
		})
	}
}

func labels(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = `"l` + strings.Repeat("x", i) + `"`
	}
	return strings.Join(s, ",")
}
