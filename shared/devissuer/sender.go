package devissuer

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// SenderTokens mints the tokens Knative Eventing's sources present to their
// sinks (feature authentication-oidc), for the dev runner and the tests: a
// service-account token of the source's own service account, issued for
// the sink's audience, as the cluster's service-account issuer signs them.
type SenderTokens struct {
	iss       *Issuer
	namespace string
	lifetime  time.Duration

	mu    sync.Mutex
	cache map[string]senderToken
}

type senderToken struct {
	raw string
	exp time.Time
}

// NewSenderTokens returns the minter for sources in namespace, signing with
// iss (an issuer of its own: the cluster's service-account issuer is not
// Keycloak's).
func NewSenderTokens(iss *Issuer, namespace string) *SenderTokens {
	return &SenderTokens{iss: iss, namespace: namespace, lifetime: time.Hour, cache: map[string]senderToken{}}
}

// Subject is the service account Knative creates for source, a source of
// kind (e.g. "kafkasource", "pingsource"), in the minter's namespace.
func (s *SenderTokens) Subject(source, kind string) string {
	return fmt.Sprintf("system:serviceaccount:%s:%s-oidc-sources.knative.dev-%s", s.namespace, source, kind)
}

// For returns the token function of source delivering to audience: like
// Knative, it reuses a token until shortly before it expires.
func (s *SenderTokens) For(source, kind, audience string) func(context.Context) (string, error) {
	sub := s.Subject(source, kind)
	key := sub + " " + audience
	return func(context.Context) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		now := s.iss.now()
		if t, ok := s.cache[key]; ok && now.Add(5*time.Minute).Before(t.exp) {
			return t.raw, nil
		}
		exp := now.Add(s.lifetime)
		raw, err := s.iss.Sign(map[string]any{
			"iss": s.iss.URL(), "sub": sub, "aud": []string{audience},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
		})
		if err != nil {
			return "", err
		}
		s.cache[key] = senderToken{raw: raw, exp: exp}
		return raw, nil
	}
}
