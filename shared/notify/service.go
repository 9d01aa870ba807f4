package notify

import (
	"context"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/ratelimit"
	"github.com/taskfn/taskfn/shared/task"
)

// Config is the configuration of the notify functions (the sink and the
// two inbox routes).
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
	SMTP      SMTPConfig
}

// Service is the inbox routes and the sink wired on one base, as the dev
// runner and the tests run them; each deployed function wires only its
// own, with the same constructors, in its main.
type Service struct {
	*function.Base
	Store  *Store
	Routes []httpx.Route
	Sink   *Sink
}

// Open wires the notify routes and sink on a new Base, limited per
// cfg.RateLimit. Like the task functions it waits for nothing: pools,
// Redis and OIDC discovery connect lazily.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) {
		lim, err := ratelimit.Open(b, cfg.RateLimit)
		if err != nil {
			return nil, err
		}
		return Wire(b, cfg, lim)
	})
}

// Wire wires the inbox routes, limited by lim (nil: unlimited; the list is
// a read, marking read a write), and the sink on b. It does not read
// cfg.RateLimit: a process wiring several families shares one limiter.
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter) (*Service, error) {
	store, err := NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), task.Anyone...)
	if err != nil {
		return nil, err
	}
	routes, err := Routes(gate, store)
	if err != nil {
		return nil, err
	}
	sink, err := OpenSink(b, cfg.SMTP, store)
	if err != nil {
		return nil, err
	}
	return &Service{Base: b, Store: store, Routes: routes, Sink: sink}, nil
}

// OpenSink is the notify sink of function b, mailing through smtp when it
// names a server.
func OpenSink(b *function.Base, smtp SMTPConfig, store *Store) (*Sink, error) {
	sender, err := NewSender(smtp)
	if err != nil {
		return nil, err
	}
	if sender == nil {
		b.Log.Info().Msg("SMTP_ADDR is empty: notifications go to the inbox only")
	}
	return NewSink(store, sender)
}
