package project_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/project"
)

// fields returns the fields a validation error names, or the error's kind.
func fields(err error) string {
	var ve *errs.ValidationError
	if errors.As(err, &ve) {
		var f []string
		for _, fe := range ve.Fields {
			f = append(f, fe.Field)
		}
		return strings.Join(f, ",")
	}
	if err != nil {
		return "invalid"
	}
	return ""
}

func TestDraft(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", project.MaxName+1)
	tests := []struct {
		name, body, want string
	}{
		{"minimal", `{"key":"ops","name":"Ops"}`, ""},
		{"every field", `{"key":"a-1","name":"A","description":"d\nmore"}`, ""},
		{"no key", `{"name":"Ops"}`, "key"},
		{"null key", `{"key":null,"name":"Ops"}`, "key"},
		{"upper case key", `{"key":"Ops","name":"Ops"}`, "key"},
		{"personal key", `{"key":"~me","name":"Ops"}`, "key"},
		{"short key", `{"key":"a","name":"Ops"}`, "key"},
		{"long key", `{"key":"` + strings.Repeat("a", 33) + `","name":"Ops"}`, "key"},
		{"no name", `{"key":"ops"}`, "name"},
		{"blank name", `{"key":"ops","name":"  "}`, "name"},
		{"null name", `{"key":"ops","name":null}`, "name"},
		{"long name", `{"key":"ops","name":"` + long + `"}`, "name"},
		{"control in name", `{"key":"ops","name":"a\u0007"}`, "name"},
		{"name a number", `{"key":"ops","name":5}`, "name"},
		{"read-only", `{"key":"ops","name":"x","version":3}`, "version"},
		{"unknown field", `{"key":"ops","name":"x","colour":"red"}`, "invalid"},
		{"not an object", `[]`, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := project.ParsePatch([]byte(tt.body))
			if err == nil {
				var d project.Project
				d, err = project.Draft(p, "me")
				if err == nil && (d.CreatedBy != "me" || d.Key == "") {
					t.Fatalf("draft %+v", d)
				}
			}
			if got := fields(err); got != tt.want {
				t.Fatalf("fields %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	cur := project.Project{Key: "ops", Name: "Ops", Description: "d"}
	tests := []struct{ name, body, want, wantName, wantDesc string }{
		{"rename", `{"name":"Operations"}`, "", "Operations", "d"},
		{"clear description", `{"description":null}`, "", "Ops", ""},
		{"same key", `{"key":"ops"}`, "", "Ops", "d"},
		{"other key", `{"key":"dev"}`, "key", "", ""},
		{"null name", `{"name":null}`, "name", "", ""},
	}
	for _, tt := range tests {
		p, err := project.ParsePatch([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		next, err := p.Apply(cur)
		if got := fields(err); got != tt.want {
			t.Errorf("%s: fields %q, want %q", tt.name, got, tt.want)
			continue
		}
		if err == nil && (next.Name != tt.wantName || next.Description != tt.wantDesc || next.Key != "ops") {
			t.Errorf("%s: %+v", tt.name, next)
		}
	}
}

func TestParseMember(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want auth.ProjectRole
		err  string
	}{
		{`{"role":"viewer"}`, auth.ProjectViewer, ""},
		{`{"role":"maintainer"}`, auth.ProjectMaintainer, ""},
		{`{"role":"owner"}`, 0, "role"},
		{`{"role":null}`, 0, "role"},
		{`{}`, 0, "role"},
		{`{"role":1}`, 0, "role"},
		{`{"role":"member","subject":"x"}`, 0, "subject"},
		{`{"role":"member","x":1}`, 0, "invalid"},
	}
	for _, tt := range tests {
		got, err := project.ParseMember([]byte(tt.body))
		if fields(err) != tt.err || got != tt.want {
			t.Errorf("%s: %v %v, want %v %q", tt.body, got, err, tt.want, tt.err)
		}
	}
}
