package httpx

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/metrics"
)

// traceparent is the W3C Trace Context header: version-traceid-parentid-flags.
var traceparent = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$`)

// requestIDOK bounds what we echo back from a client-chosen X-Request-Id.
var requestIDOK = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Observe wraps a route's handler: it gives the request an id and a logger
// (with trace.id from traceparent) in its context, recovers panics into a
// 500 problem, then writes one access-log line and the route's metrics.
func Observe(log zerolog.Logger, m *metrics.HTTP, route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		reqID := r.Header.Get("X-Request-Id")
		if !requestIDOK.MatchString(reqID) {
			reqID = newID()
		}
		w.Header().Set("X-Request-Id", reqID)
		lc := log.With().Str("http.request.id", reqID).Str("route", route)
		if tp := traceparent.FindStringSubmatch(r.Header.Get("Traceparent")); tp != nil {
			lc = lc.Str("trace.id", tp[1])
		}
		l := lc.Logger()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				l.Error().Interface("panic", p).Msg("handler panicked")
				if sw.status == 0 {
					WriteProblem(sw, r, Internal())
				}
			}
			d := time.Since(start)
			m.Observe(route, r.Method, sw.status, d)
			l.Info().
				Str("http.request.method", r.Method).
				Str("url.path", r.URL.Path).
				Int("http.response.status_code", sw.status).
				Int("http.response.body.bytes", sw.bytes).
				Dur("event.duration", d).
				Msg("request")
		}()
		next.ServeHTTP(sw, r.WithContext(l.WithContext(r.Context())))
	})
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
