package ratelimit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the rate-limit part of the configuration of every function
// that serves an authenticated route. The Redis connection settings are
// the cache's variables (REDIS_URL, REDIS_TIMEOUT, ...): one Redis, one
// way to reach it; each reader keeps a client of its own.
type Config struct {
	// Enabled false serves every request unlimited, with no Redis call and
	// no rate-limit headers.
	Enabled bool `envconfig:"RATE_LIMIT_ENABLED" default:"true"`
	// Each class's quota per caller (token subject), over all pods: at most
	// Count requests at once after Window of quiet, and Count per Window
	// sustained, spread evenly (GCRA). The RateLimit-Policy header
	// advertises it as q=Count;w=Window.
	Reads   Quota `envconfig:"RATE_LIMIT_READS" default:"600/1m"`
	Writes  Quota `envconfig:"RATE_LIMIT_WRITES" default:"300/1m"`
	Reports Quota `envconfig:"RATE_LIMIT_REPORTS" default:"60/1m"`
	// KeyPrefix goes after redis_rate's own "rate:": a caller's state is
	// the key rate:<prefix><class>:<subject>.
	KeyPrefix string `envconfig:"RATE_LIMIT_KEY_PREFIX" default:"taskfn:"`
	// Lease is how long a pod may spend, without asking Redis again, the
	// tokens it took ahead for a busy caller (see lease.go); 0 asks Redis
	// for every request.
	Lease time.Duration `envconfig:"RATE_LIMIT_LEASE" default:"100ms"`

	RedisURL        string        `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0" secret:"url"`
	Timeout         time.Duration `envconfig:"REDIS_TIMEOUT" default:"50ms"`
	PoolSize        int           `envconfig:"REDIS_POOL_SIZE" default:"8"`
	BreakerFailures uint32        `envconfig:"REDIS_BREAKER_FAILURES" default:"5"`
	BreakerCooldown time.Duration `envconfig:"REDIS_BREAKER_COOLDOWN" default:"2s"`
	BreakerProbes   uint32        `envconfig:"REDIS_BREAKER_PROBES" default:"1"`
}

// quotas is the quota of each class, indexed by Class.
func (c Config) quotas() [numClasses]Quota {
	return [numClasses]Quota{Reads: c.Reads, Writes: c.Writes, Reports: c.Reports}
}

func (c Config) validate() (*redis.Options, error) {
	var errs []error
	opts, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		// go-redis errors may quote the URL, password included.
		errs = append(errs, errors.New("REDIS_URL must be a redis:// or rediss:// URL"))
	}
	for class, q := range c.quotas() {
		if q.Count < 1 || q.Window < time.Second {
			errs = append(errs, fmt.Errorf("%s %q: want a quota such as 600/1m", Class(class).envName(), q.String()))
		}
	}
	if c.Lease < 0 {
		errs = append(errs, fmt.Errorf("RATE_LIMIT_LEASE %s: must not be negative", c.Lease))
	}
	if c.Timeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("REDIS_TIMEOUT %s: must be at least 1ms", c.Timeout))
	}
	if c.BreakerCooldown < time.Millisecond {
		errs = append(errs, fmt.Errorf("REDIS_BREAKER_COOLDOWN %s: must be at least 1ms", c.BreakerCooldown))
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
		return nil, fmt.Errorf("ratelimit: invalid config: %w", err)
	}
	return opts, nil
}

// Quota is Count requests per Window, written "600/1m": a count, a slash
// and a window that is a Go duration of whole seconds ("10s", "1m",
// "1h30m") or one unit ("s", "m", "h" for one second, minute, hour).
type Quota struct {
	Count  int
	Window time.Duration
}

// maxWindow bounds a window: a caller's key lives in Redis as long as its
// quota takes to refill.
const maxWindow = 24 * time.Hour

// Decode implements envconfig.Decoder.
func (q *Quota) Decode(s string) error {
	count, window, ok := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("%q: want requests/window, such as 600/1m", s)
	}
	window = strings.TrimSpace(window)
	var w time.Duration
	switch window {
	case "s":
		w = time.Second
	case "m":
		w = time.Minute
	case "h":
		w = time.Hour
	default:
		if w, err = time.ParseDuration(window); err != nil {
			return fmt.Errorf("%q: the window %q is not a duration such as 10s or 1m", s, window)
		}
	}
	// The headers count the window in whole seconds (the draft allows
	// no fractions).
	if w < time.Second || w > maxWindow || w%time.Second != 0 {
		return fmt.Errorf("%q: the window must be whole seconds, from 1s to %s", s, maxWindow)
	}
	*q = Quota{Count: n, Window: w}
	return nil
}

// String is the quota as Decode reads it: "600/1m".
func (q Quota) String() string {
	w := q.Window.String()
	// time.Duration writes 1m as "1m0s" and 1h as "1h0m0s".
	if strings.HasSuffix(w, "m0s") {
		w = strings.TrimSuffix(w, "0s")
	}
	if strings.HasSuffix(w, "h0m") {
		w = strings.TrimSuffix(w, "0m")
	}
	return strconv.Itoa(q.Count) + "/" + w
}
