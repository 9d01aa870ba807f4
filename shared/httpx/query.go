package httpx

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Query returns the request's query parameters, or a 400 problem saying
// what is wrong when the query string does not parse. r.URL.Query drops
// the pairs it cannot parse (a ';' separator, a bad %-escape), so a route
// reading it would answer as if they had not been sent: every route that
// reads query parameters reads them here.
func Query(r *http.Request) (url.Values, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err == nil {
		return v, nil
	}
	detail := "the query string is malformed: " + err.Error()
	var esc url.EscapeError
	switch {
	case errors.As(err, &esc):
		detail += "; a literal % is written %25"
	case strings.Contains(r.URL.RawQuery, ";"):
		detail += "; parameters are separated by &, and a literal ; is written %3B"
	}
	return nil, BadRequest(detail)
}

// Limit is the page size a list route is asked for in the query parameter
// "limit": def when it is absent or empty, else an integer from 1 to most,
// or a 400 saying so.
func Limit(v url.Values, def, most int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, BadRequest(fmt.Sprintf(`query parameter "limit" must be an integer from 1 to %d`, most))
	}
	return n, nil
}

// IDPage reads the page asked of a list keyed by UUIDv7 ids (a task's
// history, its comments): limit (def when absent, at most most) and
// cursor, the only parameters, each once; after is uuid.Nil for the first
// page.
func IDPage(r *http.Request, def, most int) (limit int, after uuid.UUID, err error) {
	v, err := Query(r)
	if err != nil {
		return 0, uuid.Nil, err
	}
	for k, vs := range v {
		if (k != "limit" && k != "cursor") || len(vs) > 1 {
			return 0, uuid.Nil, BadRequest(fmt.Sprintf("query parameter %q: this route takes limit and cursor, once each", k))
		}
	}
	if limit, err = Limit(v, def, most); err != nil {
		return 0, uuid.Nil, err
	}
	if s, ok := v["cursor"]; ok {
		b, err := base64.RawURLEncoding.DecodeString(s[0])
		if err != nil || len(b) != 16 {
			return 0, uuid.Nil, BadRequest(`query parameter "cursor" is not a cursor this route made; use the next_cursor of a previous page`)
		}
		after = uuid.UUID(b)
	}
	return limit, after, nil
}

// idCursor is the next_cursor of an IDPage list whose page ended at last.
func idCursor(last uuid.UUID) *string {
	s := base64.RawURLEncoding.EncodeToString(last[:])
	return &s
}

// WriteIDPage answers 200 with one page of an IDPage list: its items and,
// when more follow, the next_cursor after the last, whose id gives id.
func WriteIDPage[T any](w http.ResponseWriter, items []T, more bool, id func(T) uuid.UUID) {
	out := struct {
		Items []T     `json:"items"`
		Next  *string `json:"next_cursor"`
	}{Items: items}
	if more {
		out.Next = idCursor(id(items[len(items)-1]))
	}
	w.Header().Set("Cache-Control", "private, no-cache")
	WriteJSON(w, http.StatusOK, out)
}
