package comment

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMentions bounds the people one comment's body can notify: the first
// MaxMentions distinct names count, the rest stay text. A list of 200
// names would otherwise cost 200 access decisions in one request.
const MaxMentions = 20

// Mentions returns the usernames body mentions, lowercased as Keycloak
// stores them, distinct, in the order first written, at most MaxMentions.
// A mention is "@" and a username (letters, digits and . _ - + @, not
// ending in . - or @, so "@alice." at a sentence's end names alice) where
// "@" starts the text or follows a character that is none of those nor
// "/": an email address (bob@example.com) or a URL path mentions nobody.
// Code (a fenced block, an indented block's lines are left alone; an
// inline `span`) mentions nobody either: it is quoted, not addressed.
func Mentions(body string) []string {
	var out []string
	add := func(name string) bool {
		name = strings.ToLower(name)
		for _, n := range out {
			if n == name {
				return true
			}
		}
		out = append(out, name)
		return len(out) < MaxMentions
	}
	fence := ""
	for line := range strings.Lines(body) {
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if f := fenceOf(trimmed); f != "" {
			fence = f
			continue
		}
		if !scanLine(line, add) {
			break
		}
	}
	return out
}

// fenceOf is the fence a line opens (``` or ~~~, three or more), or "".
func fenceOf(line string) string {
	for _, c := range []string{"```", "~~~"} {
		if strings.HasPrefix(line, c) {
			return c
		}
	}
	return ""
}

// scanLine hands each mention of line outside inline code to add, until
// add says stop (false).
func scanLine(line string, add func(string) bool) bool {
	inCode := false
	prev := rune(-1) // -1: start of the line
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRuneInString(line[i:])
		switch {
		case r == '`':
			inCode = !inCode
		case r == '@' && !inCode && (prev == -1 || !nameRune(prev) && prev != '/'):
			end := i + size
			for end < len(line) {
				q, n := utf8.DecodeRuneInString(line[end:])
				if !nameRune(q) {
					break
				}
				end += n
			}
			name := strings.TrimRight(line[i+size:end], ".-@")
			if name != "" {
				if !add(name) {
					return false
				}
				i, prev = i+size+len(name), 'a'
				continue
			}
		}
		prev = r
		i += size
	}
	return true
}

func nameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-+@", r)
}
