package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
