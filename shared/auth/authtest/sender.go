package authtest

import (
	"net/http/httptest"
	"testing"

	"github.com/taskfn/taskfn/shared/devissuer"
)

// SenderIssuer stands for a cluster's service-account issuer: it signs the
// sender-identity tokens Knative's sources present to the event sinks.
type SenderIssuer struct {
	iss    *devissuer.Issuer
	tokens *devissuer.SenderTokens
}

// NewSenderIssuer starts one on a loopback port until the test ends.
func NewSenderIssuer(t testing.TB) *SenderIssuer {
	t.Helper()
	key, err := sharedKey()
	if err != nil {
		t.Fatalf("authtest: generating key: %v", err)
	}
	s := &SenderIssuer{}
	srv := httptest.NewServer(nil)
	t.Cleanup(srv.Close)
	if s.iss, err = devissuer.NewWithKey(srv.URL, &devissuer.Realm{Realm: "cluster", Enabled: true}, key); err != nil {
		t.Fatalf("authtest: %v", err)
	}
	srv.Config.Handler = s.iss
	s.tokens = devissuer.NewSenderTokens(s.iss, "taskfn")
	return s
}

// URL is the issuer URL, for SINK_OIDC_ISSUER.
func (s *SenderIssuer) URL() string { return s.iss.URL() }

// Token is the token a source named source, of kind ("kafkasource",
// "pingsource"), sends to a sink whose audience is audience.
func (s *SenderIssuer) Token(t testing.TB, source, kind, audience string) string {
	t.Helper()
	tok, err := s.tokens.For(source, kind, audience)(t.Context())
	if err != nil {
		t.Fatalf("authtest: %v", err)
	}
	return tok
}
