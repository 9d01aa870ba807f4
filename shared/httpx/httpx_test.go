package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
)

func TestObserveLogsECSAndRecovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		header      map[string]string
		wantStatus  int
		wantTrace   string
		wantReqID   string
		wantProblem bool
	}{
		{name: "trace and request id carried", handler: func(w http.ResponseWriter, r *http.Request) {
			zerolog.Ctx(r.Context()).Info().Msg("inside")
			w.WriteHeader(http.StatusTeapot)
		}, header: map[string]string{"Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "X-Request-Id": "req-123"},
			wantStatus: 418, wantTrace: "4bf92f3577b34da6a3ce929d0e0e4736", wantReqID: "req-123"},
		{name: "malformed traceparent ignored, unsafe request id replaced", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}, header: map[string]string{"Traceparent": "garbage", "X-Request-Id": "bad id\n"}, wantStatus: 204},
		{name: "panic becomes a 500 problem", handler: func(w http.ResponseWriter, r *http.Request) {
			panic("boom")
		}, wantStatus: 500, wantProblem: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log, err := logging.New(logging.Config{Level: "info"}, "test-fn", &buf)
			if err != nil {
				t.Fatal(err)
			}
			h := Observe(log, metrics.NewHTTP(metrics.NewRegistry()), "test-route", tc.handler)
			rec := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/x", nil)
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			h.ServeHTTP(rec, r)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if tc.wantProblem && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("content type %q", rec.Header().Get("Content-Type"))
			}
			gotID := rec.Header().Get("X-Request-Id")
			if tc.wantReqID != "" && gotID != tc.wantReqID {
				t.Errorf("request id %q, want %q", gotID, tc.wantReqID)
			}
			if len(gotID) == 0 || strings.ContainsAny(gotID, " \n") {
				t.Errorf("request id %q", gotID)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			var access map[string]any
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &access); err != nil {
				t.Fatalf("log line %q: %v", lines[len(lines)-1], err)
			}
			for _, f := range []string{"@timestamp", "log.level", "message", "service.name", "http.request.method", "url.path", "http.response.status_code", "event.duration", "http.request.id"} {
				if _, ok := access[f]; !ok {
					t.Errorf("access log lacks %s: %v", f, access)
				}
			}
			if access["service.name"] != "test-fn" || access["http.request.id"] != gotID || access["http.response.status_code"] != float64(tc.wantStatus) {
				t.Errorf("access log %v", access)
			}
			if tc.wantTrace != "" {
				for _, l := range lines { // the handler's own line carries it too
					if !strings.Contains(l, `"trace.id":"`+tc.wantTrace+`"`) {
						t.Errorf("line without trace.id: %s", l)
					}
				}
			} else if strings.Contains(buf.String(), "trace.id") {
				t.Errorf("trace.id from a malformed header: %s", buf.String())
			}
		})
	}
}

func TestReadBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ctype  string
		body   string
		status int // 0: accepted
	}{
		{"json", "application/json", `{}`, 0},
		{"json with charset", "application/json; charset=utf-8", `{}`, 0},
		{"merge patch", "application/merge-patch+json", `{}`, 0},
		{"missing type", "", `{}`, 415},
		{"form", "application/x-www-form-urlencoded", `a=b`, 415},
		{"exactly the limit", "application/json", strings.Repeat("a", int(MaxBody)), 0},
		{"one byte over", "application/json", strings.Repeat("a", int(MaxBody)+1), 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.ContentLength = -1 // as with chunked bodies: the reader must enforce the limit
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			b, err := ReadBody(httptest.NewRecorder(), r, "application/json", "application/merge-patch+json")
			if tc.status == 0 {
				if err != nil || string(b) != tc.body {
					t.Fatalf("err %v, %d bytes", err, len(b))
				}
				return
			}
			if p := AsProblem(err); p == nil || p.Status != tc.status {
				t.Fatalf("err %v, want a %d problem", err, tc.status)
			}
		})
	}
}

// TestServeDrains: a request in flight when the context ends (SIGTERM)
// completes; new connections are refused; Serve returns nil.
func TestServeDrains(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeListener(ctx, ln, h, zerolog.Nop(), 5*time.Second) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	if b := <-got; b != "done" {
		t.Fatalf("in-flight request got %q", b)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

func TestProblemRendering(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	p := Validation(errs.FieldError{Field: "title", Detail: "is required"})
	WriteProblem(rec, httptest.NewRequest("POST", "/tasks", nil), p)
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 422 || got["type"] != ProblemBase+"validation" || got["instance"] != "/tasks" || got["status"] != float64(422) {
		t.Errorf("%d %v", rec.Code, got)
	}
	if p.Instance != "" {
		t.Error("WriteProblem changed the shared problem value")
	}
	if AsProblem(errors.New("plain")) != nil {
		t.Error("AsProblem of a plain error")
	}
}

func TestWriteRawJSON(t *testing.T) {
	t.Parallel()
	big := append(append([]byte(`{"items":"`), bytes.Repeat([]byte("x"), 20_000)...), `"}`...)
	tests := []struct {
		name string
		body []byte
	}{
		{"small, no newline", []byte(`{"a":1}`)},
		{"small, newline", []byte("{\"a\":1}\n")},
		{"larger than the connection buffer", big},
		{"larger, newline", append(bytes.Clone(big), '\n')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := bytes.Clone(tt.body)
			rec := httptest.NewRecorder()
			WriteRawJSON(rec, http.StatusTeapot, tt.body)
			want := string(bytes.TrimSuffix(in, []byte("\n"))) + "\n"
			if got := rec.Body.String(); got != want {
				t.Errorf("body %q…, want %q…", got[:min(len(got), 40)], want[:min(len(want), 40)])
			}
			if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "application/json" ||
				rec.Header().Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("status %d, headers %v", rec.Code, rec.Header())
			}
			if !bytes.Equal(in, tt.body) {
				t.Error("the body passed in was modified")
			}
		})
	}
}
