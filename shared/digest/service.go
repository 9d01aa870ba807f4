// Package digest is the weekly digest's data (issue #19): a subject's
// preferences (GET and PUT /me/preferences, one function each), the rule
// of when its digest is due (Monday 07:00 in its zone, Plan), and Store,
// the one place with SQL for preferences and digests. The send-digests
// tick that composes each due digest with its chart is package
// digestsend, so the preference functions link no chart renderer.
// docs/digest.md tells the whole of it.
package digest

import (
	"context"
	"io"
	"os"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/ratelimit"
)

// Config is what the two preference functions read.
type Config struct {
	function.Config
	Auth      auth.Config
	RateLimit ratelimit.Config
}

// Service is both preference routes wired on one base, as the dev runner
// and the tests run them; each deployed function wires only its own.
type Service struct {
	*function.Base
	Store  *Store
	Routes []httpx.Route
}

// Open wires both routes on a new Base, limited per cfg.RateLimit.
func Open(ctx context.Context, name string, cfg Config, logOut io.Writer) (*Service, error) {
	return function.OpenWith(ctx, name, cfg.Config, &cfg, logOut, func(b *function.Base) (*Service, error) {
		lim, err := ratelimit.Open(b, cfg.RateLimit)
		if err != nil {
			return nil, err
		}
		return Wire(b, cfg, lim, nil)
	})
}

// Wire wires both routes on b, limited by lim (GET a read, PUT a write),
// over store (nil: a new one, which files no events: the routes write
// none).
func Wire(b *function.Base, cfg Config, lim *ratelimit.Limiter, store *Store) (*Service, error) {
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), auth.Roles...)
	if err != nil {
		return nil, err
	}
	if store == nil {
		if store, err = NewStore(b.DB, "", nil); err != nil {
			return nil, err
		}
	}
	var routes []httpx.Route
	for _, c := range []func(*auth.Gate, *Store) (httpx.Route, error){GetRoute, PutRoute} {
		r, err := c(gate, store)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	return &Service{Base: b, Store: store, Routes: routes}, nil
}

// Serve is the whole of a preference function: its configuration read
// from the environment, its route wired on a new Base, served until ctx
// ends.
func Serve(ctx context.Context, name string, route func(*auth.Gate, *Store) (httpx.Route, error)) error {
	var cfg Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	b, err := function.Open(ctx, name, cfg.Config, &cfg, os.Stdout)
	if err != nil {
		return err
	}
	defer b.Close()
	lim, err := ratelimit.Open(b, cfg.RateLimit)
	if err != nil {
		return err
	}
	gate, err := b.Gate(cfg.Auth, lim.ByMethod(), auth.Roles...)
	if err != nil {
		return err
	}
	store, err := NewStore(b.DB, "", nil)
	if err != nil {
		return err
	}
	r, err := route(gate, store)
	if err != nil {
		return err
	}
	return b.Serve(ctx, r)
}
