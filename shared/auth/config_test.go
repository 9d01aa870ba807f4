package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := Config{Issuer: "https://sso.example/realms/taskfn", Audience: "taskfn-api",
		ClockSkew: 30 * time.Second, SigningAlgs: []string{"RS256"}, TokenCacheSize: 10, JWKSMinRefresh: time.Second}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
		check   func(t *testing.T, got Config)
	}{
		{"valid", func(*Config) {}, "", nil},
		{"relative issuer", func(c *Config) { c.Issuer = "/realms/taskfn" }, "OIDC_ISSUER", nil},
		{"issuer without scheme", func(c *Config) { c.Issuer = "sso.example" }, "OIDC_ISSUER", nil},
		{"no audience", func(c *Config) { c.Audience = "" }, "OIDC_AUDIENCE", nil},
		{"HS256", func(c *Config) { c.SigningAlgs = []string{"RS256", "HS256"} }, `"HS256"`, nil},
		{"alg none", func(c *Config) { c.SigningAlgs = []string{"none"} }, `"none"`, nil},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }, "OIDC_CLOCK_SKEW", nil},
		{"negative cache size", func(c *Config) { c.TokenCacheSize = -1 }, "OIDC_TOKEN_CACHE_SIZE", nil},
		{"group prefix without its slash", func(c *Config) { c.ProjectGroupPrefix = "/projects" }, "OIDC_PROJECT_GROUP_PREFIX", nil},
		{"negative refresh", func(c *Config) { c.JWKSMinRefresh = -time.Second }, "OIDC_JWKS_MIN_REFRESH", nil},
		{"zero refresh and no algs take the defaults", func(c *Config) { c.JWKSMinRefresh, c.SigningAlgs = 0, nil }, "",
			func(t *testing.T, got Config) {
				if got.JWKSMinRefresh != 10*time.Second || !cmp.Equal(got.SigningAlgs, []string{"RS256"}) {
					t.Errorf("defaults not applied: %+v", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			cfg.SigningAlgs = []string{"RS256"}
			tt.change(&cfg)
			got, err := cfg.validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				if tt.check != nil {
					tt.check(t, got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("validate error = %v, want it to mention %s", err, tt.wantErr)
			}
		})
	}
}
