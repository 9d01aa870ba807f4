package httpx

import (
	"bytes"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// wantStatus fails t unless err is a *Problem of one of statuses. (Package
// httpxtest's Want4xx cannot be used here: it imports httpx.)
func wantStatus(t *testing.T, err error, input any, statuses ...int) {
	t.Helper()
	if p := AsProblem(err); p == nil || !slices.Contains(statuses, p.Status) {
		t.Fatalf("input %q: %v, want a problem of status %v", input, err, statuses)
	}
}

// FuzzQuery: whatever the raw query string, Query returns exactly what
// url.ParseQuery reads or a 400 problem, and Limit a page size from 1 to
// its most or a 400; neither panics.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{
		"", "a=1&b=x%20y&a=2", "q=a%3Bb", "sort=title;drop%20table%20tasks", "q=100%", "li%zzmit=1",
		"limit=7", "limit=", "limit=0", "limit=101", "limit=-5", "limit=+5", "limit=ten", "limit=99999999999999999999",
		"limit=1&limit=2", "=&&=", "%", "%%41", "a=%E2%82", "q=+%2B+", "\x00=\xff",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.URL.RawQuery = raw
		v, err := Query(r)
		want, werr := url.ParseQuery(raw)
		if err != nil {
			wantStatus(t, err, raw, http.StatusBadRequest)
			if werr == nil {
				t.Fatalf("%q refused (%v), yet url.ParseQuery reads it", raw, err)
			}
			return
		}
		if werr != nil || !maps.EqualFunc(v, want, slices.Equal) {
			t.Fatalf("%q: Query = %v, url.ParseQuery = %v, %v", raw, v, want, werr)
		}
		n, err := Limit(v, 20, 100)
		if err != nil {
			wantStatus(t, err, raw, http.StatusBadRequest)
			return
		}
		if n < 1 || n > 100 {
			t.Fatalf("%q: limit %d, not in 1..100", raw, n)
		}
	})
}

// FuzzReadBody: whatever the media type and body, ReadBody returns the
// body whole or a 415, 413 or 400 problem. The body is 1 MiB at most
// (MaxBody), so the fuzzer's inputs, a few KiB, are under it; the limit
// itself is fuzzed through a declared Content-Length.
func FuzzReadBody(f *testing.F) {
	f.Add("application/json", []byte(`{"title":"x"}`), int64(-1))
	f.Add("application/merge-patch+json; charset=utf-8", []byte(`{}`), int64(-1))
	f.Add("Application/JSON", []byte(`{}`), int64(2))
	f.Add("text/plain", []byte(`{}`), int64(-1))
	f.Add("", []byte(``), int64(0))
	f.Add("application/json; charset", []byte(`x`), MaxBody+1)
	f.Add(`application/json; a="`, []byte(`x`), int64(-1))
	f.Fuzz(func(t *testing.T, contentType string, body []byte, length int64) {
		r := httptest.NewRequest(http.MethodPost, "/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		r.ContentLength = length
		got, err := ReadBody(httptest.NewRecorder(), r, "application/merge-patch+json", "application/json")
		if err != nil {
			wantStatus(t, err, contentType, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge, http.StatusBadRequest)
			if p := AsProblem(err); p.Status == http.StatusUnsupportedMediaType && !strings.Contains(p.Detail, "application/merge-patch+json") {
				t.Fatalf("415 %q does not name the media type wanted", p.Detail)
			}
			return
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("body %q read as %q", body, got)
		}
	})
}
