// Package textfield checks the text people write into records (a task's
// title and labels, a project's name, descriptions), so every record
// refuses the same things in the same words.
package textfield

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Line is what is wrong with s as a one-line field of at most max
// characters: blank, too long, or holding a control character; "" when
// nothing is.
func Line(s string, max int) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "must not be blank"
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	case HasControl(s, false):
		return "must not contain control characters"
	}
	return ""
}

// Text is what is wrong with s as free text of at most max characters:
// too long, or holding a control character other than tab and newlines;
// "" when nothing is. Empty text is fine.
func Text(s string, max int) string {
	switch {
	case utf8.RuneCountInString(s) > max:
		return fmt.Sprintf("must be at most %d characters", max)
	case HasControl(s, true):
		return "must not contain control characters other than tab and newline"
	}
	return ""
}

// HasControl reports whether s holds a control character (tab, CR and LF
// allowed with allowNewlines). It also catches NUL, which PostgreSQL text
// cannot store.
func HasControl(s string, allowNewlines bool) bool {
	for _, r := range s {
		if allowNewlines && (r == '\n' || r == '\t' || r == '\r') {
			continue
		}
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
