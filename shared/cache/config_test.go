package cache_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/cache"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/task"
)

// Not parallel: it sets environment variables.
func TestConfigFromEnvironment(t *testing.T) {
	var cfg cache.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	if !cfg.Enabled || cfg.TTL != 5*time.Minute || cfg.TTLJitter != 0.1 ||
		cfg.NegativeTTL != 5*time.Second || cfg.Timeout != 50*time.Millisecond || cfg.PoolSize != 8 {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, tc := range []struct {
		in   string
		want cache.Fraction
		ok   bool
	}{{"10%", 0.1, true}, {"0.25", 0.25, true}, {" 5 % ", 0.05, true}, {"0", 0, true}, {"ten", 0, false}, {"%", 0, false}} {
		t.Setenv("CACHE_TTL_JITTER", tc.in)
		var c cache.Config
		err := config.Load(&c)
		if (err == nil) != tc.ok || (tc.ok && c.TTLJitter != tc.want) {
			t.Errorf("CACHE_TTL_JITTER=%q: %v, %v", tc.in, c.TTLJitter, err)
		}
	}
}

func TestConfigRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*cache.Config)
		want   string
	}{
		{"bad URL", func(c *cache.Config) { c.RedisURL = "http://user:secret@x" }, "REDIS_URL"},
		{"zero TTL", func(c *cache.Config) { c.TTL = 0 }, "CACHE_TTL"},
		{"sub-millisecond timeout", func(c *cache.Config) { c.Timeout = time.Microsecond }, "REDIS_TIMEOUT"},
		{"jitter too large", func(c *cache.Config) { c.TTLJitter = 0.6 }, "CACHE_TTL_JITTER"},
		{"no pool", func(c *cache.Config) { c.PoolSize = 0 }, "REDIS_POOL_SIZE"},
		{"breaker never trips", func(c *cache.Config) { c.BreakerFailures = 0 }, "REDIS_BREAKER_FAILURES"},
		{"negative window", func(c *cache.Config) { c.PrimaryWindow = -time.Second }, "CACHE_PRIMARY_WINDOW"},
	}
	load := cache.Loaders{Replica: noLoad, Primary: noLoad}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg cache.Config
			if err := config.Load(&cfg); err != nil {
				t.Fatal(err)
			}
			tc.change(&cfg)
			_, err := cache.New(t.Context(), cfg, load, prometheus.NewRegistry(), zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	if _, err := cache.New(t.Context(), cache.Config{}, cache.Loaders{Replica: noLoad}, prometheus.NewRegistry(), zerolog.Nop()); err == nil {
		t.Error("New accepted a missing loader")
	}
}

var noLoad cache.Loader = func(_ context.Context, _ uuid.UUID) (task.Task, error) { return task.Task{}, task.ErrNotFound }
