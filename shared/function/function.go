// Package function is what every taskfn function runs on: its logger,
// database pools, Prometheus registry and HTTP server, opened in order and
// closed in reverse. Packages that serve routes (taskapi, notify, report,
// cleanup) build their services on a Base.
package function

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/logging"
	"github.com/taskfn/taskfn/shared/metrics"
	"github.com/taskfn/taskfn/shared/people"
	"github.com/taskfn/taskfn/shared/pg"
)

// Config is the part of the configuration every function has. Services
// embed it; the other fields are named, so envconfig would prefix their
// variables (AUTH_...): the tags' own names are what it reads when the
// prefixed name is unset, and the only names documented.
type Config struct {
	Server httpx.ServerConfig
	Log    logging.Config
	DB     pg.Config
}

// Base holds a function's logger, pools and registry.
type Base struct {
	Name     string
	Log      zerolog.Logger
	DB       *pg.DB
	Registry *prometheus.Registry
	server   httpx.ServerConfig
	closers  []closer
}

type closer struct {
	what string
	fn   func() error
}

// Open wires the base of function name: the logger (which logs all, the
// function's whole configuration, with secrets masked), the database pools
// and a registry exporting their statistics. Nothing here waits for the
// network: pools connect lazily, and /readyz tells.
func Open(ctx context.Context, name string, cfg Config, all any, logOut io.Writer) (*Base, error) {
	out, closeLog := logging.Output(cfg.Log, logOut)
	log, err := logging.New(cfg.Log, name, out)
	if err != nil {
		_ = closeLog()
		return nil, err
	}
	log.Info().Interface("config", config.Describe(all)).Msg("starting")
	db, err := pg.Open(ctx, cfg.DB)
	if err != nil {
		_ = closeLog()
		return nil, fmt.Errorf("database: %w", err)
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(metrics.NewPoolCollector("primary", db.Primary))
	if db.Replica != db.Primary {
		reg.MustRegister(metrics.NewPoolCollector("replica", db.Replica))
	}
	b := &Base{Name: name, Log: log, DB: db, Registry: reg, server: cfg.Server}
	// First registered, last run: whatever closing logs is flushed too.
	b.OnClose("log buffer", closeLog)
	b.OnClose("database pools", func() error { db.Close(); return nil })
	return b, nil
}

// OnClose registers fn to run at Close; the last registered runs first.
func (b *Base) OnClose(what string, fn func() error) {
	b.closers = append(b.closers, closer{what, fn})
}

// Close releases everything registered, in reverse order.
func (b *Base) Close() {
	for _, c := range slices.Backward(b.closers) {
		if err := c.fn(); err != nil {
			b.Log.Warn().Err(err).Str("closing", c.what).Msg("close failed")
		}
	}
	b.closers = nil
}

// Ready is the /readyz probe: the database answers. Redis and Kafka are
// left out on purpose: without them requests degrade, they do not fail.
func (b *Base) Ready(ctx context.Context) error { return b.DB.Ping(ctx) }

// Handler mounts routes beside /healthz, /readyz and /metrics.
func (b *Base) Handler(routes ...httpx.Route) http.Handler {
	return httpx.NewRouter(b.Log, b.Registry, b.Ready, routes...)
}

// Serve serves routes on $PORT until ctx ends, then drains.
func (b *Base) Serve(ctx context.Context, routes ...httpx.Route) error {
	addr := net.JoinHostPort("", strconv.Itoa(b.server.Port))
	return httpx.Serve(ctx, addr, b.Handler(routes...), b.Log, b.server.ShutdownTimeout)
}

// ServeSink serves route, this function's event sink, behind the
// sender-identity check of cfg (auth.Senders): only Knative's own sources
// get an event handled. A function that is also a route (ingest-events)
// passes its gated routes as also, served beside the sink as they are.
func (b *Base) ServeSink(ctx context.Context, cfg auth.SenderConfig, route httpx.Route, also ...httpx.Route) error {
	r, err := GuardSink(cfg, b.Name, route)
	if err != nil {
		return err
	}
	return b.Serve(ctx, append(also, r)...)
}

// GuardSink puts route, the event sink of function name, behind the
// sender-identity check of cfg; the dev runner guards each of its sinks so.
func GuardSink(cfg auth.SenderConfig, name string, route httpx.Route) (httpx.Route, error) {
	s, err := auth.NewSenders(cfg, name)
	if err != nil {
		return httpx.Route{}, err
	}
	route.Handler = s.Require(route.Handler)
	return route, nil
}

// Gate is the gate of this function's authenticated routes: tokens
// verified per cfg, callers held to limit (a shared/ratelimit hook; nil
// limits nothing) and holding one of roles, each remembered in the people
// directory (so notify can mail them). Nothing waits for the network: OIDC
// discovery happens on the first token.
func (b *Base) Gate(cfg auth.Config, limit auth.LimitFunc, roles ...auth.Role) (*auth.Gate, error) {
	v, err := auth.NewVerifier(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	dir, err := people.New(b.DB.Primary, people.DefaultCacheSize)
	if err != nil {
		return nil, err
	}
	g, err := auth.NewGate(v, roles, dir.Remember)
	if err != nil {
		return nil, err
	}
	return g.WithLimit(limit), nil
}

// ErrMissing is returned by constructors given a nil dependency.
var ErrMissing = errors.New("missing dependency")

// OpenWith opens a Base for function name and wires a service on it with
// wire, closing the base again if wiring fails. all is the function's whole
// configuration, for the start-up log.
func OpenWith[S any](ctx context.Context, name string, cfg Config, all any, logOut io.Writer, wire func(*Base) (S, error)) (S, error) {
	var zero S
	b, err := Open(ctx, name, cfg, all, logOut)
	if err != nil {
		return zero, err
	}
	s, err := wire(b)
	if err != nil {
		b.Close()
		return zero, err
	}
	return s, nil
}
