package comment

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestMentions(t *testing.T) {
	t.Parallel()
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("@u%d", i)
	}
	tests := []struct {
		name, body string
		want       []string
	}{
		{"none", "no one here", nil},
		{"one", "@alice please look", []string{"alice"}},
		{"lowercased, distinct, in order", "@Bob and @alice, then @BOB again", []string{"bob", "alice"}},
		{"sentence end", "thanks @carol.", []string{"carol"}},
		{"punctuation around", "(@dave) @erin: @frank!", []string{"dave", "erin", "frank"}},
		{"dotted and dashed names", "@jane.doe @j_smith @x-y", []string{"jane.doe", "j_smith", "x-y"}},
		{"an email username", "@ops@corp.example please", []string{"ops@corp.example"}},
		{"an email address is no mention", "write to bob@example.com", nil},
		{"a URL path is no mention", "see https://example.com/@alice", nil},
		{"a lone @", "meet @ 5 or @", nil},
		{"inline code", "run `@alice deploy` then ask @bob", []string{"bob"}},
		{"fenced code", "```\n@alice\n```\n@bob\n~~~go\n@carol\n~~~\n", []string{"bob"}},
		{"unclosed fence hides the rest", "@a\n```\n@b", []string{"a"}},
		{"non-ASCII names", "@zoë and @李", []string{"zoë", "李"}},
		{"at most MaxMentions", strings.Join(many, " "), func() []string {
			var w []string
			for i := range MaxMentions {
				w = append(w, fmt.Sprintf("u%d", i))
			}
			return w
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Mentions(tt.body); !slices.Equal(got, tt.want) {
				t.Errorf("Mentions(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func FuzzMentions(f *testing.F) {
	for _, s := range []string{"@a b@c `@d` ```\n@e\n```", "@@@", "@.-@", "\xff@x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got := Mentions(body)
		if len(got) > MaxMentions {
			t.Fatalf("%d mentions", len(got))
		}
		for _, n := range got {
			if n == "" || n != strings.ToLower(n) || strings.ContainsAny(n[len(n)-1:], ".-@") {
				t.Fatalf("bad name %q from %q", n, body)
			}
		}
	})
}
