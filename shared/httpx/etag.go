package httpx

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// ETag is the entity tag of a record with a version (a task, a project),
// which bumps on every change.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// Condition is an If-Match or If-None-Match header: "*" or a list of
// entity tags as sent (W/ prefix included). nil is an absent header.
type Condition struct {
	star bool
	tags []string
}

// Precondition parses the header name of r (its field lines joined, as
// RFC 9110 5.3 allows for a list): nil when absent or empty, a 400 problem
// that shows how to write it when malformed. Entity tags are quoted
// (RFC 9110 8.8.3): If-Match: 2 names no tag, so it is refused rather than
// answered 412 as if 2 were an old version.
func Precondition(r *http.Request, name string) (*Condition, error) {
	v := strings.TrimSpace(strings.Join(r.Header.Values(name), ","))
	if v == "" {
		return nil, nil
	}
	if v == "*" {
		return &Condition{star: true}, nil
	}
	c := &Condition{}
	for s := v; ; {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if s[0] == ',' { // empty list elements are allowed (RFC 9110 5.6.1)
			s = s[1:]
			continue
		}
		tag, rest, ok := cutETag(s)
		if !ok {
			return nil, malformed(name, v)
		}
		c.tags = append(c.tags, tag)
		if s = strings.TrimLeft(rest, " \t"); s != "" && s[0] != ',' {
			return nil, malformed(name, v)
		}
	}
	if len(c.tags) == 0 {
		return nil, malformed(name, v)
	}
	return c, nil
}

// cutETag cuts the entity tag at the start of s: [W/] DQUOTE *etagc DQUOTE,
// etagc being any visible character but DQUOTE, or obs-text.
func cutETag(s string) (tag, rest string, ok bool) {
	i := 0
	if strings.HasPrefix(s, "W/") {
		i = 2
	}
	if i >= len(s) || s[i] != '"' {
		return "", s, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[:j+1], s[j+1:], true
		case c <= ' ' || c == 0x7f:
			return "", s, false
		}
	}
	return "", s, false
}

// malformed is the 400 for header name with value v. A bare version
// number, the usual mistake, is shown quoted.
func malformed(name, v string) error {
	example := `"3"`
	if len(v) <= 20 && strings.Trim(v, "0123456789") == "" {
		example = `"` + v + `"`
	}
	return BadRequest(fmt.Sprintf("%s must be * or a comma list of entity tags in double quotes, as the ETag header gives them: %s: %s", name, name, example))
}

// Matches reports whether c names tag. weak allows W/ tags, which
// If-None-Match compares weakly and If-Match never matches (RFC 9110
// 13.1). An absent header (nil) names nothing.
func (c *Condition) Matches(tag string, weak bool) bool {
	if c == nil {
		return false
	}
	if c.star {
		return true
	}
	for _, t := range c.tags {
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
