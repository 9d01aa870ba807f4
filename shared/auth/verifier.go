package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

var (
	// ErrUnavailable means the token could not be checked because the
	// issuer's discovery document or keys cannot be had: the caller may hold
	// a perfectly good token, so this is a 503, never a 401.
	ErrUnavailable = errors.New("auth: identity provider unavailable")
	// ErrInvalidToken means the token is not one this service accepts.
	ErrInvalidToken = errors.New("auth: invalid token")
)

// Public descriptions of why a token was refused (RFC 6750 error_description).
// They tell a client what to do, not how the check works.
const (
	descInvalid         = "the access token is invalid"
	descExpired         = "the access token has expired"
	descNotYetValid     = "the access token is not valid yet"
	descWrongAudience   = "the access token was not issued for this API"
	descNotAccessToken  = "the token is not an access token"
	descMissingIdentity = "the access token names no subject"
)

// maxTokenBytes refuses absurd tokens before hashing or parsing them;
// Keycloak access tokens are a few KiB even with many roles.
const maxTokenBytes = 16 << 10

// retryCap bounds how often discovery (and the first JWKS fetch) is retried
// while the issuer is unreachable.
const retryCap = time.Second

// tokenError is an ErrInvalidToken with a description safe to send and the
// internal cause, for logs only.
type tokenError struct {
	desc  string
	cause error
}

func invalid(desc string, cause error) error { return &tokenError{desc: desc, cause: cause} }

func (e *tokenError) Error() string {
	if e.cause == nil {
		return "auth: invalid token: " + e.desc
	}
	return "auth: invalid token: " + e.desc + ": " + e.cause.Error()
}
func (e *tokenError) Is(target error) bool { return target == ErrInvalidToken }
func (e *tokenError) Unwrap() error        { return e.cause }

// Verifier checks Keycloak access tokens. It is safe for concurrent use.
type Verifier struct {
	cfg        Config
	client     *http.Client
	oidcCfg    *oidc.Config
	known      []Role                                    // the roles Identity carries, in this order
	cache      *lru.Cache[[sha256.Size]byte, cacheEntry] // nil when disabled
	now        func() time.Time
	retryEvery time.Duration

	keys  atomic.Pointer[keySet] // set once discovery succeeded
	group singleflight.Group
	mu    sync.Mutex
	tried time.Time // last discovery attempt
	err   error     // its error
}

type cacheEntry struct {
	id       Identity
	deadline time.Time // exp plus the clock skew: as long as a fresh check would accept it
}

// NewVerifier returns a Verifier for cfg. It does no network I/O: discovery
// happens on first use, so a function starts while Keycloak is down and
// answers 503 until it is back. A nil client means one with a timeout.
func NewVerifier(cfg Config, client *http.Client) (*Verifier, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	v := &Verifier{
		cfg:    cfg,
		client: client,
		// Audience, expiry and not-before are checked below, with the
		// configured leeway and the azp alternative that go-oidc lacks.
		oidcCfg: &oidc.Config{
			ClientID:             "",
			SkipClientIDCheck:    true,
			SkipExpiryCheck:      true,
			SupportedSigningAlgs: cfg.SigningAlgs,
		},
		known:      []Role{RoleAdmin, RoleManager, RoleMember},
		now:        time.Now,
		retryEvery: min(retryCap, cfg.JWKSMinRefresh),
	}
	if cfg.TokenCacheSize > 0 {
		if v.cache, err = lru.New[[sha256.Size]byte, cacheEntry](cfg.TokenCacheSize); err != nil {
			return nil, fmt.Errorf("auth: token cache: %w", err)
		}
	}
	return v, nil
}

// Verify checks rawToken and returns the caller it names. Errors match
// ErrInvalidToken (the token is refused) or ErrUnavailable (it could not be
// checked now).
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Identity, error) {
	if rawToken == "" || len(rawToken) > maxTokenBytes {
		return Identity{}, invalid(descInvalid, fmt.Errorf("token length %d", len(rawToken)))
	}
	var key [sha256.Size]byte
	if v.cache != nil {
		key = sha256.Sum256([]byte(rawToken))
		if e, ok := v.cache.Get(key); ok {
			if v.now().After(e.deadline) {
				v.cache.Remove(key)
				return Identity{}, invalid(descExpired, errors.New("cached token past exp"))
			}
			return cloneIdentity(e.id), nil
		}
	}
	keys, err := v.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	// go-oidc flattens the key set's errors into strings; recording the
	// original keeps "issuer unreachable" apart from "bad signature".
	rec := &recordingKeySet{keys: keys}
	tok, err := oidc.NewVerifier(v.cfg.Issuer, rec, v.oidcCfg).Verify(ctx, rawToken)
	if err != nil {
		if rec.err != nil {
			return Identity{}, rec.err
		}
		return Identity{}, invalid(descInvalid, err)
	}
	id, deadline, err := v.checkClaims(tok)
	if err != nil {
		return Identity{}, err
	}
	if v.cache != nil {
		v.cache.Add(key, cacheEntry{id: id, deadline: deadline})
	}
	return cloneIdentity(id), nil
}

// Ready reports whether tokens can be checked: nil once discovery and the
// JWKS fetch succeeded. It tries them if they have not yet, within the same
// retry limits as Verify.
func (v *Verifier) Ready(ctx context.Context) error {
	keys, err := v.discover(ctx)
	if err != nil {
		return err
	}
	return keys.ready(ctx)
}

// accessClaims are the claims beyond those go-oidc decodes.
type accessClaims struct {
	AZP           string   `json:"azp"`
	Typ           string   `json:"typ"`
	NotBefore     *float64 `json:"nbf"`
	Username      string   `json:"preferred_username"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	RealmAccess   struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
	ResourceAccess map[string]struct {
		Roles []string `json:"roles"`
	} `json:"resource_access"`
	Groups []string `json:"groups"`
}

// checkClaims applies what go-oidc was told to skip and builds the
// identity. It returns until when the result may be cached.
func (v *Verifier) checkClaims(tok *oidc.IDToken) (Identity, time.Time, error) {
	var c accessClaims
	if err := tok.Claims(&c); err != nil {
		return Identity{}, time.Time{}, invalid(descInvalid, err)
	}
	// Keycloak's ID and refresh tokens are signed by the same key; only its
	// access tokens say "Bearer".
	if c.Typ != "" && c.Typ != "Bearer" {
		return Identity{}, time.Time{}, invalid(descNotAccessToken, fmt.Errorf("typ %q", c.Typ))
	}
	if !slices.Contains(tok.Audience, v.cfg.Audience) && (c.AZP == "" || !slices.Contains(v.cfg.AllowedAZP, c.AZP)) {
		return Identity{}, time.Time{}, invalid(descWrongAudience, fmt.Errorf("aud %q, azp %q", tok.Audience, c.AZP))
	}
	now, skew := v.now(), v.cfg.ClockSkew
	if tok.Expiry.IsZero() {
		return Identity{}, time.Time{}, invalid(descInvalid, errors.New("no exp"))
	}
	deadline := tok.Expiry.Add(skew)
	if now.After(deadline) {
		return Identity{}, time.Time{}, invalid(descExpired, fmt.Errorf("exp %s", tok.Expiry.UTC()))
	}
	if c.NotBefore != nil {
		if nbf := time.Unix(int64(*c.NotBefore), 0); now.Add(skew).Before(nbf) {
			return Identity{}, time.Time{}, invalid(descNotYetValid, fmt.Errorf("nbf %s", nbf.UTC()))
		}
	}
	if !tok.IssuedAt.IsZero() && now.Add(skew).Before(tok.IssuedAt) {
		return Identity{}, time.Time{}, invalid(descNotYetValid, fmt.Errorf("iat %s", tok.IssuedAt.UTC()))
	}
	if tok.Subject == "" {
		return Identity{}, time.Time{}, invalid(descMissingIdentity, errors.New("empty sub"))
	}
	id := Identity{Subject: tok.Subject, Username: c.Username, Roles: v.roles(c),
		ProjectRoles: GroupRoles(c.Groups, v.cfg.ProjectGroupPrefix)}
	if c.EmailVerified {
		id.Email = c.Email
	}
	return id, deadline, nil
}

// roles keeps the roles taskfn knows from the realm roles and the API
// client's roles, in a fixed order and without duplicates.
func (v *Verifier) roles(c accessClaims) []Role {
	var out []Role
	client := c.ResourceAccess[v.cfg.Audience].Roles
	for _, r := range v.known {
		if slices.Contains(c.RealmAccess.Roles, string(r)) || slices.Contains(client, string(r)) {
			out = append(out, r)
		}
	}
	return out
}

// discover returns the key set once the issuer's discovery document was
// read. Attempts are shared by concurrent callers and, after a failure,
// spaced retryEvery apart, so an unreachable Keycloak sees about one request
// per second however busy the function is.
func (v *Verifier) discover(ctx context.Context) (*keySet, error) {
	if ks := v.keys.Load(); ks != nil {
		return ks, nil
	}
	ch := v.group.DoChan("discover", func() (any, error) { return v.discoverIfDue() })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*keySet), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for discovery: %w", ErrUnavailable, ctx.Err())
	}
}

func (v *Verifier) discoverIfDue() (*keySet, error) {
	if ks := v.keys.Load(); ks != nil {
		return ks, nil
	}
	v.mu.Lock()
	now := v.now()
	if !v.tried.IsZero() && now.Sub(v.tried) < v.retryEvery && v.err != nil {
		err := v.err
		v.mu.Unlock()
		return nil, err
	}
	v.tried = now
	v.mu.Unlock()

	ks, err := v.fetchDiscovery()

	v.mu.Lock()
	defer v.mu.Unlock()
	if err != nil {
		v.err = fmt.Errorf("%w: discovery: %w", ErrUnavailable, err)
		return nil, v.err
	}
	v.err = nil
	v.keys.Store(ks)
	return ks, nil
}

func (v *Verifier) fetchDiscovery() (*keySet, error) {
	// Detached from any request: the attempt is shared, and one caller
	// hanging up must not fail it for the rest.
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	// NewProvider checks that the document names exactly cfg.Issuer.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, v.client), v.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, err
	}
	if meta.JWKSURI == "" {
		return nil, errors.New("discovery document has no jwks_uri")
	}
	ks := newKeySet(meta.JWKSURI, v.client, v.cfg.SigningAlgs, v.cfg.JWKSMinRefresh, v.retryEvery)
	ks.now = v.now
	return ks, nil
}

// recordingKeySet remembers the key set's own error for one verification.
type recordingKeySet struct {
	keys *keySet
	err  error
}

func (r *recordingKeySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := r.keys.VerifySignature(ctx, jwt)
	r.err = err
	return payload, err
}

// cloneIdentity copies the roles so a caller changing its Identity cannot
// change what the cache hands the next request.
func cloneIdentity(id Identity) Identity {
	id.Roles = slices.Clone(id.Roles)
	return id
}
