package notify

import (
	"context"
	"fmt"
	"io"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/notify/people"
)

// Config is the configuration of the notify functions (the sink and the
// two inbox routes).
type Config struct {
	function.Config
	Auth auth.Config
	SMTP SMTPConfig
}

// Service holds what a notify function runs on: open it, Serve its
// routes, Close it.
type Service struct {
	*function.Base
	Store *Store
	API   *API
	Sink  *Sink
}

// Open wires a notify function on a new Base. Like the task functions it
// waits for nothing: pools and OIDC discovery connect lazily.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) { return New(b, cfg) })
}

// New wires the inbox API and the sink on b.
func New(b *function.Base, cfg Config) (*Service, error) {
	sender, err := NewSender(cfg.SMTP)
	if err != nil {
		return nil, err
	}
	store, err := NewStore(b.DB)
	if err != nil {
		return nil, err
	}
	v, err := auth.NewVerifier(cfg.Auth, nil)
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	dir, err := people.New(b.DB.Primary, people.DefaultCacheSize)
	if err != nil {
		return nil, err
	}
	api, err := NewAPI(store, v, dir)
	if err != nil {
		return nil, err
	}
	sink, err := NewSink(store, sender)
	if err != nil {
		return nil, err
	}
	if sender == nil {
		b.Log.Info().Msg("SMTP_ADDR is empty: notifications go to the inbox only")
	}
	return &Service{Base: b, Store: store, API: api, Sink: sink}, nil
}
