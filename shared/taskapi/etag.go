package taskapi

import (
	"strconv"
	"strings"
)

// etag is a task's entity tag: its version, which bumps on every change.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// matchesAny reports whether header (If-Match / If-None-Match: "*" or a
// comma list of entity tags) names tag. weak allows W/ tags, which
// If-None-Match compares weakly and If-Match never matches (RFC 9110 13.1).
func matchesAny(header, tag string, weak bool) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if strings.HasPrefix(t, "W/") {
			if !weak {
				continue
			}
			t = t[2:]
		}
		if t == tag {
			return true
		}
	}
	return false
}
