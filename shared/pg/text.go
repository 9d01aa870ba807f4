package pg

import (
	"strings"
	"unicode/utf8"
)

// TextOK reports whether PostgreSQL can take s as a text value, or as a
// string inside jsonb: valid UTF-8 without NUL. Anything else fails the
// statement (22021 invalid byte sequence, 22P05 for jsonb), which is no
// transient failure, so it answers 500: untrusted text is checked with
// TextOK before it reaches a query.
func TextOK(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
