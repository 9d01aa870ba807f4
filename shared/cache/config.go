package cache

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the cache part of every task function's configuration.
type Config struct {
	// Enabled false serves every read from the database (the replica pool)
	// and makes writes skip Redis: the explicit "no cache" mode.
	Enabled  bool   `envconfig:"CACHE_ENABLED" default:"true"`
	RedisURL string `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0" secret:"url"`
	// KeyPrefix starts every key, so deployments (and test packages) can
	// share one Redis.
	KeyPrefix string        `envconfig:"CACHE_KEY_PREFIX" default:"taskfn:"`
	TTL       time.Duration `envconfig:"CACHE_TTL" default:"5m"`
	// TTLJitter spreads expiry over TTL × (1 ± TTLJitter) so entries cached
	// together do not all miss together.
	TTLJitter   Fraction      `envconfig:"CACHE_TTL_JITTER" default:"10%"`
	NegativeTTL time.Duration `envconfig:"CACHE_NEGATIVE_TTL" default:"5s"`
	// TombstoneTTL is how long a deleted task's tombstone outlives the
	// delete. Sets that reach Redis later than half the shorter of this
	// and the entry TTL after their database read are refused, so no read
	// that began before a delete can outlive its tombstone.
	TombstoneTTL time.Duration `envconfig:"CACHE_TOMBSTONE_TTL" default:"1m"`
	// PrimaryWindow: after an invalidation, misses load from the primary
	// for this long, covering replica lag behind the write that caused it.
	PrimaryWindow time.Duration `envconfig:"CACHE_PRIMARY_WINDOW" default:"10s"`
	// LoadTimeout bounds a shared database load; it runs on its own
	// deadline so the first caller giving up does not fail the others.
	LoadTimeout time.Duration `envconfig:"CACHE_LOAD_TIMEOUT" default:"5s"`
	// RepairInterval is how often a process that could not refresh an
	// entry retries the invalidation until Redis takes it.
	RepairInterval time.Duration `envconfig:"CACHE_REPAIR_INTERVAL" default:"250ms"`

	// Timeout bounds every Redis call (dial, write, read, pool wait).
	Timeout time.Duration `envconfig:"REDIS_TIMEOUT" default:"50ms"`
	// PoolSize is small: a Knative pod serves few concurrent requests.
	PoolSize int `envconfig:"REDIS_POOL_SIZE" default:"8"`
	// The breaker opens after BreakerFailures consecutive failed calls,
	// stays open for BreakerCooldown (no Redis calls at all), then lets
	// BreakerProbes calls through to test whether Redis is back.
	BreakerFailures uint32        `envconfig:"REDIS_BREAKER_FAILURES" default:"5"`
	BreakerCooldown time.Duration `envconfig:"REDIS_BREAKER_COOLDOWN" default:"2s"`
	BreakerProbes   uint32        `envconfig:"REDIS_BREAKER_PROBES" default:"1"`
}

func (c Config) validate() (*redis.Options, error) {
	var errs []error
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		// go-redis errors may quote the URL, password included.
		errs = append(errs, errors.New("REDIS_URL must be a redis:// or rediss:// URL"))
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"CACHE_TTL", c.TTL}, {"CACHE_NEGATIVE_TTL", c.NegativeTTL}, {"CACHE_TOMBSTONE_TTL", c.TombstoneTTL},
		{"CACHE_LOAD_TIMEOUT", c.LoadTimeout}, {"CACHE_REPAIR_INTERVAL", c.RepairInterval},
		{"REDIS_TIMEOUT", c.Timeout}, {"REDIS_BREAKER_COOLDOWN", c.BreakerCooldown},
	}
	for _, p := range positive {
		// Redis counts in milliseconds; less would round to "no expiry".
		if p.d < time.Millisecond {
			errs = append(errs, fmt.Errorf("%s %s: must be at least 1ms", p.name, p.d))
		}
	}
	if c.PrimaryWindow < 0 {
		errs = append(errs, fmt.Errorf("CACHE_PRIMARY_WINDOW %s: must not be negative", c.PrimaryWindow))
	}
	if c.TTLJitter < 0 || c.TTLJitter > 0.5 {
		errs = append(errs, fmt.Errorf("CACHE_TTL_JITTER %g: must be from 0 to 0.5 (50%%)", float64(c.TTLJitter)))
	}
	if c.PoolSize < 1 {
		errs = append(errs, fmt.Errorf("REDIS_POOL_SIZE %d: must be at least 1", c.PoolSize))
	}
	if c.BreakerFailures < 1 {
		errs = append(errs, errors.New("REDIS_BREAKER_FAILURES must be at least 1"))
	}
	if c.BreakerProbes < 1 {
		errs = append(errs, errors.New("REDIS_BREAKER_PROBES must be at least 1"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cache: invalid config: %w", err)
	}
	return opts, nil
}

// maxSetAge is how long after its start a read or write may still place
// a value (see TombstoneTTL): half the shortest lifetime of an entry that
// could hold a newer value.
func (c Config) maxSetAge() time.Duration {
	shortest := time.Duration(float64(c.TTL) * (1 - float64(c.TTLJitter)))
	return min(shortest, c.TombstoneTTL) / 2
}

// Fraction is a share written as a fraction ("0.1") or a percentage
// ("10%").
type Fraction float64

// Decode implements envconfig.Decoder.
func (f *Fraction) Decode(s string) error {
	s = strings.TrimSpace(s)
	div := 1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, div = strings.TrimSpace(p), 100
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("%q is not a fraction (0.1) or a percentage (10%%)", s)
	}
	*f = Fraction(v / div)
	return nil
}
