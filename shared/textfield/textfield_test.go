package textfield_test

import (
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/textfield"
)

func TestLineAndText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s          string
		line, text string // "" fine, else a word of the problem
	}{
		{"Ship it", "", ""},
		{"", "blank", ""},
		{"   ", "blank", ""},
		{strings.Repeat("é", 10), "", ""},
		{strings.Repeat("é", 11), "at most 10", "at most 10"},
		{"a\nb", "control", ""},
		{"a\tb\r\n", "control", ""},
		{"a\x00b", "control", "control"},
		{"a\u0007", "control", "control"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			name, got, want string
		}{{"Line", textfield.Line(tt.s, 10), tt.line}, {"Text", textfield.Text(tt.s, 10), tt.text}} {
			if (c.want == "") != (c.got == "") || !strings.Contains(c.got, c.want) {
				t.Errorf("%s(%q) = %q, want %q", c.name, tt.s, c.got, c.want)
			}
		}
	}
}
