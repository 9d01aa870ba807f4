package httpx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/metrics"
)

// ServerConfig is the HTTP part of every function's configuration.
type ServerConfig struct {
	Port            int           `envconfig:"PORT" default:"8080"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"20s"`
}

// Route is one method and path served by a function.
type Route struct {
	Name    string // metric and log label, e.g. "get-task"
	Method  string
	Path    string // httprouter syntax: /tasks/:id
	Handler http.Handler
}

// Probe reports whether a dependency is usable, for /readyz.
type Probe func(ctx context.Context) error

// NewRouter mounts routes, each observed (logs, metrics, panics), beside
// /healthz, /readyz (which runs ready) and /metrics.
func NewRouter(log zerolog.Logger, reg *prometheus.Registry, ready Probe, routes ...Route) *httprouter.Router {
	m := metrics.NewHTTP(reg)
	rt := httprouter.New()
	for _, r := range routes {
		rt.Handler(r.Method, r.Path, Observe(log, m, r.Name, r.Handler))
	}
	rt.Handler(http.MethodGet, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	rt.Handler(http.MethodGet, "/readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			log.Warn().Err(err).Msg("not ready")
			WriteProblem(w, r, Unavailable("a dependency is not reachable"))
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}))
	rt.Handler(http.MethodGet, "/metrics", metrics.Handler(reg))
	rt.NotFound = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteProblem(w, r, NotFound())
	})
	rt.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// httprouter has already set Allow.
		WriteProblem(w, r, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", ""))
	})
	return rt
}

// Serve listens on addr and serves h until ctx ends, then stops accepting
// and drains in-flight requests for up to drain.
func Serve(ctx context.Context, addr string, h http.Handler, log zerolog.Logger, drain time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h, log, drain)
}

// ServeListener is Serve on an open listener (tests pick port 0).
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger, drain time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info().Str("addr", ln.Addr().String()).Msg("listening")
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Dur("drain", drain).Msg("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}
