package ratelimit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/ratelimit"
)

// Not parallel: it sets environment variables.
func TestConfigFromEnvironment(t *testing.T) {
	var cfg ratelimit.Config
	if err := config.Load(&cfg); err != nil {
		t.Fatal(err)
	}
	minute := time.Minute
	if !cfg.Enabled || cfg.Reads != (ratelimit.Quota{Count: 600, Window: minute}) || cfg.Writes != (ratelimit.Quota{Count: 300, Window: minute}) ||
		cfg.Reports != (ratelimit.Quota{Count: 60, Window: minute}) || cfg.Lease != 100*time.Millisecond || cfg.KeyPrefix != "taskfn:" ||
		cfg.Timeout != 50*time.Millisecond {
		t.Errorf("defaults: %+v", cfg)
	}
	// The start-up log shows a quota as it is written.
	if got := config.Describe(&cfg)["RATE_LIMIT_READS"]; got != "600/1m" {
		t.Errorf("Describe shows RATE_LIMIT_READS as %q", got)
	}
	for _, tc := range []struct {
		in   string
		want ratelimit.Quota
		ok   bool
	}{
		{"600/1m", ratelimit.Quota{Count: 600, Window: minute}, true},
		{"600/m", ratelimit.Quota{Count: 600, Window: minute}, true},
		{" 20 / s ", ratelimit.Quota{Count: 20, Window: time.Second}, true},
		{"100/10s", ratelimit.Quota{Count: 100, Window: 10 * time.Second}, true},
		{"5000/h", ratelimit.Quota{Count: 5000, Window: time.Hour}, true},
		{"90/1m30s", ratelimit.Quota{Count: 90, Window: 90 * time.Second}, true},
		{"600", ratelimit.Quota{}, false},
		{"0/1m", ratelimit.Quota{}, false},
		{"-5/1m", ratelimit.Quota{}, false},
		{"many/1m", ratelimit.Quota{}, false},
		{"600/minute", ratelimit.Quota{}, false},
		{"600/500ms", ratelimit.Quota{}, false},
		{"600/1.5s", ratelimit.Quota{}, false},
		{"600/48h", ratelimit.Quota{}, false},
	} {
		t.Setenv("RATE_LIMIT_READS", tc.in)
		var c ratelimit.Config
		err := config.Load(&c)
		if (err == nil) != tc.ok || (tc.ok && c.Reads != tc.want) {
			t.Errorf("RATE_LIMIT_READS=%q: %v, %v", tc.in, c.Reads, err)
		}
		// What String writes, Decode reads back.
		if tc.ok {
			var back ratelimit.Quota
			if err := back.Decode(c.Reads.String()); err != nil || back != tc.want {
				t.Errorf("%q: String %q reads back as %v, %v", tc.in, c.Reads.String(), back, err)
			}
		}
	}
}

func TestConfigRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*ratelimit.Config)
		want   string
	}{
		{"bad URL", func(c *ratelimit.Config) { c.RedisURL = "http://user:secret@x" }, "REDIS_URL"},
		{"no quota", func(c *ratelimit.Config) { c.Writes = ratelimit.Quota{} }, "RATE_LIMIT_WRITES"},
		{"sub-second window", func(c *ratelimit.Config) { c.Reports = ratelimit.Quota{Count: 5, Window: time.Millisecond} }, "RATE_LIMIT_REPORTS"},
		{"negative lease", func(c *ratelimit.Config) { c.Lease = -time.Second }, "RATE_LIMIT_LEASE"},
		{"sub-millisecond timeout", func(c *ratelimit.Config) { c.Timeout = time.Microsecond }, "REDIS_TIMEOUT"},
		{"no pool", func(c *ratelimit.Config) { c.PoolSize = 0 }, "REDIS_POOL_SIZE"},
		{"breaker never trips", func(c *ratelimit.Config) { c.BreakerFailures = 0 }, "REDIS_BREAKER_FAILURES"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg ratelimit.Config
			if err := config.Load(&cfg); err != nil {
				t.Fatal(err)
			}
			tc.change(&cfg)
			_, err := ratelimit.New(cfg, prometheus.NewRegistry(), zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	if _, err := ratelimit.New(ratelimit.Config{}, nil, zerolog.Nop()); err == nil {
		t.Error("New accepted a missing registry")
	}
}
