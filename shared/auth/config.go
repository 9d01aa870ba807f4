package auth

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config says which tokens a Verifier accepts. Functions embed it in their
// own config; the defaults fit the dev runner's embedded issuer.
type Config struct {
	Issuer   string `envconfig:"OIDC_ISSUER" default:"http://127.0.0.1:8080/realms/taskfn"`
	Audience string `envconfig:"OIDC_AUDIENCE" default:"taskfn-api"` // also the client whose resource_access roles count
	// Keycloak only puts the API into aud when an audience mapper says so;
	// tokens of the clients listed here are accepted without it.
	AllowedAZP     []string      `envconfig:"OIDC_ALLOWED_AZP"`
	ClockSkew      time.Duration `envconfig:"OIDC_CLOCK_SKEW" default:"30s"`
	SigningAlgs    []string      `envconfig:"OIDC_SIGNING_ALGS" default:"RS256"`
	TokenCacheSize int           `envconfig:"OIDC_TOKEN_CACHE_SIZE" default:"10000"` // 0 disables the verified-token cache
	JWKSMinRefresh time.Duration `envconfig:"OIDC_JWKS_MIN_REFRESH" default:"10s"`   // rate limit for refetching JWKS on an unknown kid
	// ProjectGroupPrefix: a group "<prefix><key>/<role>" in the token's
	// groups claim (Keycloak's group membership mapper, full path) gives
	// its members that role in project key.
	ProjectGroupPrefix string `envconfig:"OIDC_PROJECT_GROUP_PREFIX" default:"/projects/"`
}

// asymmetricAlgs are the algorithms a JWKS of public keys can verify.
// Symmetric ones (HS*) are refused outright: with them, anyone who knows the
// published key could sign.
var asymmetricAlgs = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
}

// Defaults applied to a zero Config field where zero cannot mean anything
// useful (a Config built in code rather than by envconfig).
const (
	defaultJWKSMinRefresh = 10 * time.Second
	defaultAlg            = "RS256"
	defaultGroupPrefix    = "/projects/"
)

// validate checks cfg and fills the defaults above.
func (cfg Config) validate() (Config, error) {
	var errs []error
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, fmt.Errorf("OIDC_ISSUER %q must be an absolute http(s) URL", cfg.Issuer))
	}
	if cfg.Audience == "" {
		errs = append(errs, errors.New("OIDC_AUDIENCE must not be empty"))
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > 5*time.Minute {
		errs = append(errs, fmt.Errorf("OIDC_CLOCK_SKEW %s must be between 0 and 5m", cfg.ClockSkew))
	}
	if cfg.TokenCacheSize < 0 {
		errs = append(errs, fmt.Errorf("OIDC_TOKEN_CACHE_SIZE %d must not be negative", cfg.TokenCacheSize))
	}
	if cfg.JWKSMinRefresh < 0 {
		errs = append(errs, fmt.Errorf("OIDC_JWKS_MIN_REFRESH %s must not be negative", cfg.JWKSMinRefresh))
	}
	if cfg.JWKSMinRefresh == 0 {
		cfg.JWKSMinRefresh = defaultJWKSMinRefresh
	}
	if cfg.ProjectGroupPrefix == "" {
		cfg.ProjectGroupPrefix = defaultGroupPrefix
	}
	if !strings.HasSuffix(cfg.ProjectGroupPrefix, "/") {
		errs = append(errs, fmt.Errorf("OIDC_PROJECT_GROUP_PREFIX %q must end with /", cfg.ProjectGroupPrefix))
	}
	if len(cfg.SigningAlgs) == 0 {
		cfg.SigningAlgs = []string{defaultAlg}
	}
	for _, alg := range cfg.SigningAlgs {
		if !slices.Contains(asymmetricAlgs, alg) {
			errs = append(errs, fmt.Errorf("OIDC_SIGNING_ALGS: %q is not an asymmetric JWS algorithm", alg))
		}
	}
	cfg.SigningAlgs = slices.Clone(cfg.SigningAlgs)
	cfg.AllowedAZP = slices.Clone(cfg.AllowedAZP)
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("auth: invalid config: %w", err)
	}
	return cfg, nil
}
