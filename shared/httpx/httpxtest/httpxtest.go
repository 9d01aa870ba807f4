// Package httpxtest sends the requests tests make to taskfn's routes over
// real HTTP: a JSON body, a bearer token, the whole reply read.
package httpxtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

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
