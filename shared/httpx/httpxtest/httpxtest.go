// Package httpxtest serves taskfn's routes to tests over real HTTP and
// sends the requests tests make to them: a JSON body, a bearer token, the
// whole reply read; and checks what a failure would answer (Want4xx, the
// fuzz targets' property).
package httpxtest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/taskfn/taskfn/shared/httpx"
)

// Serve serves h on a loopback port until t ends. Tests serve what a
// function serves: its Base's Handler of the routes under test, or the
// routes on httpx.NewRouter, so requests pass the production router and
// middleware.
func Serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// Call sends method url with body, as application/json unless it is
// empty, and with token as a bearer token unless it is empty, through
// client (http.DefaultClient when nil). It returns the response with its
// body read and closed, and the body. A request that cannot be sent, or a
// body that cannot be read, fails t.
func Call(t testing.TB, client *http.Client, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the reply: %v", method, url, err)
	}
	return resp, b
}

// Want4xx fails t unless err is nil or a client error: a status from 400
// to 499 by httpx.ProblemOf, the one table routes and sinks answer with.
// It is the fuzz targets' property: input that is not valid is refused as
// the client's mistake (a sink's: never redelivered), never answered 5xx.
// It returns the status, 0 for nil.
func Want4xx(t testing.TB, err error, input any) int {
	t.Helper()
	if err == nil {
		return 0
	}
	p := httpx.ProblemOf(context.Background(), err)
	if p.Status < 400 || p.Status > 499 {
		t.Fatalf("input %q: %v answers %d, want a 4xx", input, err, p.Status)
	}
	return p.Status
}
