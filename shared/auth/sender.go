package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/httpx"
)

// SenderConfig says which deliveries an event sink accepts: those carrying
// a Knative Eventing sender-identity token (feature authentication-oidc).
// A source requests such a token from the cluster's service-account
// issuer for the audience its spec.sink.audience names, as its own
// per-source service account. Without this check any pod that can reach a
// sink could POST it a forged event.
type SenderConfig struct {
	// Issuer is the cluster's service-account issuer (kube-apiserver
	// --service-account-issuer); the default is the dev runner's.
	Issuer string `envconfig:"SINK_OIDC_ISSUER" default:"http://127.0.0.1:8080/eventing"`
	// Audience is what the tokens must be issued for; empty means
	// "taskfn-<function>", which the sources' spec.sink.audience names.
	Audience string `envconfig:"SINK_OIDC_AUDIENCE"`
	// Senders are the subjects let through, as path.Match patterns. The
	// default admits only the service accounts Knative creates for its
	// sources ("<source>-oidc-sources.knative.dev-<kind>"): any pod may
	// project a token for any audience, so the audience alone proves little.
	Senders     []string `envconfig:"SINK_ALLOWED_SENDERS" default:"system:serviceaccount:*:*-oidc-sources.knative.dev-*"`
	SigningAlgs []string `envconfig:"SINK_OIDC_SIGNING_ALGS" default:"RS256"`
	// The API server serves the issuer's discovery and keys over TLS signed
	// by the cluster CA, to service accounts only (the ClusterRole
	// system:service-account-issuer-discovery): the manifests project both.
	CAFile    string `envconfig:"SINK_OIDC_CA_FILE"`
	TokenFile string `envconfig:"SINK_OIDC_TOKEN_FILE"`
}

// DefaultAudience is the audience of function name's sink when
// SINK_OIDC_AUDIENCE is unset.
func DefaultAudience(name string) string { return "taskfn-" + name }

// Senders checks sender-identity tokens for one sink.
type Senders struct {
	v        *Verifier
	patterns []string
}

// NewSenders returns the check of the sink of function name per cfg. It
// does no network I/O: discovery happens on the first delivery.
func NewSenders(cfg SenderConfig, name string) (*Senders, error) {
	aud := cfg.Audience
	if aud == "" {
		aud = DefaultAudience(name)
	}
	if len(cfg.Senders) == 0 {
		return nil, errors.New("auth: SINK_ALLOWED_SENDERS must name at least one subject pattern")
	}
	for _, p := range cfg.Senders {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, fmt.Errorf("auth: SINK_ALLOWED_SENDERS: bad pattern %q", p)
		}
	}
	client, err := discoveryClient(cfg.CAFile, cfg.TokenFile)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(Config{Issuer: cfg.Issuer, Audience: aud, SigningAlgs: cfg.SigningAlgs,
		ClockSkew: 30 * time.Second, TokenCacheSize: 64, JWKSMinRefresh: defaultJWKSMinRefresh}, client)
	if err != nil {
		return nil, fmt.Errorf("sender identity: %w", err)
	}
	return &Senders{v: v, patterns: cfg.Senders}, nil
}

// Verify returns the subject of a valid sender token, or an error matching
// ErrInvalidToken (refused: 401) or ErrUnavailable (503).
func (s *Senders) Verify(ctx context.Context, raw string) (string, error) {
	id, err := s.v.Verify(ctx, raw)
	if err != nil {
		return "", err
	}
	for _, p := range s.patterns {
		if ok, _ := path.Match(p, id.Subject); ok {
			return id.Subject, nil
		}
	}
	return "", invalid(descNotSender, fmt.Errorf("subject %q", id.Subject))
}

const descNotSender = "the token does not belong to an event source of this sink"

// Require lets a delivery through to next only with a sender token: 401
// without or with a refused one (so nothing is handled, and the source
// dead-letters the event), 503 while the issuer cannot be reached (the
// source retries).
func (s *Senders) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, p := bearerToken(r)
		if p != nil {
			httpx.WriteProblem(w, r, p)
			return
		}
		sub, err := s.Verify(r.Context(), raw)
		if err != nil {
			// A refused delivery is worth a warning: sources do not err.
			refuse(w, r, err, zerolog.WarnLevel, "the sender-identity issuer")
			return
		}
		zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str("sender", sub) })
		next.ServeHTTP(w, r)
	})
}

// discoveryClient is the HTTP client for the issuer's discovery and keys:
// trusting caFile's certificates when set, and presenting the token in
// tokenFile (read on each request: the kubelet rotates it) when set.
func discoveryClient(caFile, tokenFile string) (*http.Client, error) {
	if caFile == "" && tokenFile == "" {
		return nil, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("auth: SINK_OIDC_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("auth: SINK_OIDC_CA_FILE %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if tokenFile != "" {
		rt = tokenTransport{file: tokenFile, next: tr}
	}
	return &http.Client{Timeout: fetchTimeout, Transport: rt}, nil
}

type tokenTransport struct {
	file string
	next http.RoundTripper
}

func (t tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := os.ReadFile(t.file)
	if err != nil {
		return nil, fmt.Errorf("auth: SINK_OIDC_TOKEN_FILE: %w", err)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	return t.next.RoundTrip(r)
}
