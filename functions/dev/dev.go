package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/taskfn/taskfn/shared/devissuer"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/taskapi"
)

// devConfig is the task functions' configuration plus the dev runner's own.
type devConfig struct {
	Task taskapi.Config
	Addr string `envconfig:"DEV_ADDR" default:"127.0.0.1:8080"`
	// ExternalIssuer reads OIDC_ISSUER without the default, to tell whether
	// the operator named a real Keycloak.
	ExternalIssuer string `envconfig:"OIDC_ISSUER"`
	RealmFile      string `envconfig:"DEV_REALM_FILE" default:"knative/keycloak/realm-taskfn.json"`
}

// devRealm is the realm the development issuer serves.
const devRealm = "taskfn"

// serve runs everything on cfg.Addr, or on ln when a test passes one.
func serve(ctx context.Context, cfg devConfig, ln net.Listener) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Addr, err)
		}
	}
	mux := http.NewServeMux()
	if cfg.ExternalIssuer == "" {
		realm, err := devissuer.LoadRealm(cfg.RealmFile)
		if err != nil {
			return fmt.Errorf("dev issuer: %w", err)
		}
		cfg.Task.Auth.Issuer = "http://" + ln.Addr().String() + "/realms/" + devRealm
		iss, err := devissuer.New(cfg.Task.Auth.Issuer, realm)
		if err != nil {
			return fmt.Errorf("dev issuer: %w", err)
		}
		mux.Handle("/realms/"+devRealm+"/", iss)
	}
	if err := pg.EnsureDatabase(ctx, cfg.Task.DB.URL); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	if err := pg.Migrate(ctx, cfg.Task.DB.URL); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	svc, err := taskapi.Open(ctx, "dev", cfg.Task, os.Stdout)
	if err != nil {
		return err
	}
	defer svc.Close()
	mux.Handle("/", svc.Handler(svc.API.Routes()...))
	if cfg.ExternalIssuer == "" {
		svc.Log.Info().Str("issuer", cfg.Task.Auth.Issuer).
			Str("token_endpoint", cfg.Task.Auth.Issuer+"/protocol/openid-connect/token").
			Str("users", strings.Join([]string{"alice (admin)", "bob (manager)", "carol, dave (members)"}, ", ")).
			Msg("development issuer: password = user name")
	}
	return httpx.ServeListener(ctx, ln, mux, svc.Log, cfg.Task.Server.ShutdownTimeout)
}
