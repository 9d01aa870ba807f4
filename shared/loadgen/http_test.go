package loadgen_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/taskfn/taskfn/shared/loadgen"
)

// seen is what the test server received.
type seen struct {
	method, uri, auth, contentType, body string
}

// newServer serves the test's answers and counts the connections it opened.
func newServer(t *testing.T) (srv *httptest.Server, conns *atomic.Int64, last func() seen) {
	t.Helper()
	var mu sync.Mutex
	var got seen
	conns = new(atomic.Int64)
	big := strings.Repeat("x", 20_000)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = seen{r.Method, r.RequestURI, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)}
		mu.Unlock()
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = io.WriteString(w, big)
		case "/chunked":
			// Flushed in parts without a length: chunked encoding.
			for range 3 {
				_, _ = io.WriteString(w, big)
				w.(http.Flusher).Flush()
			}
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "bye")
		case "/missing":
			http.NotFound(w, r)
		case "/created":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"1"}`)
		case "/hang":
			<-r.Context().Done()
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns, func() seen { mu.Lock(); defer mu.Unlock(); return got }
}

// TestClient sends each request twice on one worker's connection: the
// answer's status comes back, the server gets the request as built, and the
// connection is reused unless the answer closes it.
func TestClient(t *testing.T) {
	t.Parallel()
	srv, conns, last := newServer(t)
	tests := []struct {
		name, method, path string
		header             http.Header
		body               string
		want               int
		wantConns          int64 // opened for the two requests
	}{
		{"length", "GET", "/length?status=todo&limit=50", http.Header{"Authorization": {"Bearer abc"}}, "", 200, 1},
		{"chunked", "GET", "/chunked", nil, "", 200, 1},
		{"no content", "DELETE", "/empty", nil, "", 204, 1},
		{"connection close", "GET", "/close", nil, "", 200, 2},
		{"not found", "GET", "/missing", nil, "", 404, 1},
		{"post", "POST", "/created", http.Header{"Content-Type": {"application/json"}}, `{"title":"t"}`, 201, 1},
		{"empty post", "POST", "/created", nil, "", 201, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One client per case: cases run one after the other, so the
			// server's connection count is theirs alone.
			c := loadgen.NewClient(1, 5*time.Second)
			defer c.Close()
			req, err := loadgen.NewRequest(tt.method, srv.URL+tt.path, tt.header, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			before := conns.Load()
			for i := range 2 {
				status, err := c.Do(t.Context(), 0, req)
				if err != nil || status != tt.want {
					t.Fatalf("request %d: status %d, %v; want %d", i, status, err, tt.want)
				}
				want := seen{tt.method, tt.path, tt.header.Get("Authorization"), tt.header.Get("Content-Type"), tt.body}
				if got := last(); got != want {
					t.Errorf("request %d: server got %+v, want %+v", i, got, want)
				}
			}
			if n := conns.Load() - before; n != tt.wantConns {
				t.Errorf("%d connections opened, want %d", n, tt.wantConns)
			}
		})
	}
}

// TestClientStaleConnection: a kept-alive connection the server closed
// while idle is replaced for a GET, which may be sent again, but not for a
// POST, which might then be applied twice.
func TestClientStaleConnection(t *testing.T) {
	t.Parallel()
	srv, conns, _ := newServer(t)
	c := loadgen.NewClient(2, 5*time.Second)
	defer c.Close()
	get, _ := loadgen.NewRequest("GET", srv.URL+"/length", nil, nil)
	post, _ := loadgen.NewRequest("POST", srv.URL+"/created", nil, []byte("{}"))
	for w, req := range []loadgen.Request{get, post} {
		if _, err := c.Do(t.Context(), w, req); err != nil {
			t.Fatal(err)
		}
	}
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond) // the FINs arrive
	before := conns.Load()
	if status, err := c.Do(t.Context(), 0, get); err != nil || status != 200 {
		t.Errorf("GET on a closed connection: %d, %v; want it sent again on a new one", status, err)
	}
	if _, err := c.Do(t.Context(), 1, post); err == nil {
		t.Error("POST on a closed connection succeeded: it was sent twice")
	}
	if status, err := c.Do(t.Context(), 1, post); err != nil || status != 201 {
		t.Errorf("POST after the failure: %d, %v; want a new connection", status, err)
	}
	if n := conns.Load() - before; n != 2 {
		t.Errorf("%d connections opened, want 2", n)
	}
}

// TestClientContext: a request the server never answers ends with the
// context, not at the client's timeout.
func TestClientContext(t *testing.T) {
	t.Parallel()
	srv, _, _ := newServer(t)
	c := loadgen.NewClient(1, time.Minute)
	defer c.Close()
	req, _ := loadgen.NewRequest("GET", srv.URL+"/hang", nil, nil)
	// The connection is opened under another context first: the one of
	// the hanging request must still end it.
	fast, _ := loadgen.NewRequest("GET", srv.URL+"/length", nil, nil)
	if _, err := c.Do(t.Context(), 0, fast); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Do(ctx, 0, req); err == nil {
		t.Fatal("an unanswered request succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
}

func TestHTTPStep(t *testing.T) {
	t.Parallel()
	srv, _, _ := newServer(t)
	c := loadgen.NewClient(1, 5*time.Second)
	defer c.Close()
	for _, tt := range []struct {
		path    string
		want    int
		wantErr string
	}{
		{"/length", 200, ""},
		{"/missing", 200, "GET /missing HTTP/1.1: status 404, want 200"},
	} {
		req, _ := loadgen.NewRequest("GET", srv.URL+tt.path, nil, nil)
		err := loadgen.HTTP(c, tt.want, func(int) loadgen.Request { return req })(t.Context(), 0)
		if got := errString(err); got != tt.wantErr {
			t.Errorf("%s: error %q, want %q", tt.path, got, tt.wantErr)
		}
	}
}

// TestWithPath: a request derived for another path keeps the method,
// header and body, and the one it came from is unchanged.
func TestWithPath(t *testing.T) {
	t.Parallel()
	srv, _, last := newServer(t)
	c := loadgen.NewClient(1, 5*time.Second)
	defer c.Close()
	h := http.Header{"Authorization": {"Bearer abc"}, "Content-Type": {"application/json"}}
	base, err := loadgen.NewRequest("POST", srv.URL+"/missing", h, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		req  loadgen.Request
		want int
		uri  string
	}{
		{base.WithPath("/created?x=1"), 201, "/created?x=1"},
		{base.WithPath("/created").WithPath("/length"), 200, "/length"},
		{base, 404, "/missing"},
	} {
		status, err := c.Do(t.Context(), 0, tt.req)
		if err != nil || status != tt.want {
			t.Errorf("%s: status %d, %v; want %d", tt.uri, status, err, tt.want)
		}
		if got, want := last(), (seen{"POST", tt.uri, "Bearer abc", "application/json", `{"a":1}`}); got != want {
			t.Errorf("server got %+v, want %+v", got, want)
		}
	}
	for _, bad := range []string{"tasks", "/a b", "/a\r\nX: y", ""} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("WithPath(%q) did not panic", bad)
				}
			}()
			base.WithPath(bad)
		}()
	}
}

func TestNewRequestRejects(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"https://example.com/", "/relative", "http://", "http://[::1"} {
		if _, err := loadgen.NewRequest("GET", u, nil, nil); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
