package taskapi

import (
	"net/http/httptest"
	"testing"

	"github.com/taskfn/taskfn/shared/httpx"
)

// precondition without a route: the cases a client cannot send through
// the table in TestPreconditionSyntax (several field lines).
func TestPrecondition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lines  []string
		strong bool // names "1" for If-Match
		weak   bool // names "1" for If-None-Match
		bad    bool
	}{
		{"absent", nil, false, false, false},
		{"empty line", []string{""}, false, false, false},
		{"star", []string{"*"}, true, true, false},
		{"two lines, the second names it", []string{`"7"`, `"1"`}, true, true, false},
		{"an empty line beside a tag", []string{"", `W/"1"`}, false, true, false},
		{"a bad second line", []string{`"1"`, `1`}, false, false, true},
		{"star on a second line", []string{`"7"`, `*`}, false, false, true},
		{"obs-text in a tag", []string{"\"1\xe9\""}, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("PATCH", "/tasks/x", nil)
			for _, l := range tc.lines {
				r.Header.Add("If-Match", l)
			}
			c, err := precondition(r, "If-Match")
			if tc.bad {
				if p := httpx.AsProblem(err); p == nil || p.Status != 400 {
					t.Fatalf("err %v, want a 400", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.matches(`"1"`, false); got != tc.strong {
				t.Errorf("strong match %v, want %v", got, tc.strong)
			}
			if got := c.matches(`"1"`, true); got != tc.weak {
				t.Errorf("weak match %v, want %v", got, tc.weak)
			}
		})
	}
}
