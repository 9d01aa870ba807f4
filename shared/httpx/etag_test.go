package httpx

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Precondition without a route: the cases a client cannot send through
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
			c, err := Precondition(r, "If-Match")
			if tc.bad {
				if p := AsProblem(err); p == nil || p.Status != 400 {
					t.Fatalf("err %v, want a 400", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Matches(`"1"`, false); got != tc.strong {
				t.Errorf("strong match %v, want %v", got, tc.strong)
			}
			if got := c.Matches(`"1"`, true); got != tc.weak {
				t.Errorf("weak match %v, want %v", got, tc.weak)
			}
		})
	}
}

// FuzzPrecondition: whatever If-Match lines a client sends, precondition
// answers nil (absent), a condition or a 400; a condition names only
// well-formed entity tags, each of which it matches.
func FuzzPrecondition(f *testing.F) {
	for _, c := range [][2]string{
		{"", ""}, {"*", ""}, {`"1"`, ""}, {`W/"1"`, ""}, {`"7"`, `"1"`}, {"", `W/"1"`}, {`"1"`, `1`}, {`"7"`, `*`},
		{"\"1\xe9\"", ""}, {`"1", W/"2",, "3"`, ""}, {`1`, ""}, {`"1`, ""}, {`W/1`, ""}, {`"a b"`, ""}, {`"1""2"`, ""},
		{" , ,", ""}, {"W/", ""}, {`"1" x`, ""}, {"\t\"1\"\t", ""},
	} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, first, second string) {
		r := httptest.NewRequest(http.MethodPatch, "/tasks/x", nil)
		r.Header.Add("If-Match", first)
		if second != "" {
			r.Header.Add("If-Match", second)
		}
		c, err := Precondition(r, "If-Match")
		if err != nil {
			if p := ProblemOf(context.Background(), err); p.Status != 400 {
				t.Fatalf("%q: %v answers %d, want 400", r.Header.Values("If-Match"), err, p.Status)
			}
			return
		}
		joined := strings.TrimSpace(strings.Join(r.Header.Values("If-Match"), ","))
		switch {
		case c == nil:
			if joined != "" {
				t.Fatalf("%q read as absent", joined)
			}
			return
		case c.star:
			if joined != "*" || len(c.tags) > 0 {
				t.Fatalf("%q read as *", joined)
			}
			return
		case len(c.tags) == 0:
			t.Fatalf("%q read as a condition naming nothing", joined)
		}
		for _, tag := range c.tags {
			opaque := strings.TrimPrefix(tag, "W/")
			if len(opaque) < 2 || opaque[0] != '"' || opaque[len(opaque)-1] != '"' || strings.Contains(opaque[1:len(opaque)-1], `"`) {
				t.Fatalf("%q: tag %q is not an entity tag", joined, tag)
			}
			if !c.Matches(opaque, true) || (tag == opaque && !c.Matches(opaque, false)) {
				t.Fatalf("%q: the condition does not match its own tag %q", joined, tag)
			}
		}
	})
}
