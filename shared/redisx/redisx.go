// Package redisx is how taskfn's Redis readers (the task cache, the rate
// limiter) connect: one client set-up, and one scale for their circuit
// breakers' gauges, so the two cannot drift apart.
package redisx

import (
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/sony/gobreaker/v2"
)

// NewClient returns a client for opts (parsed from REDIS_URL) with every
// timeout timeout and a pool of poolSize. It never retries: a retry would
// double the cost of a Redis in trouble, and each reader has a fallback
// (the database, or letting the request through) instead.
func NewClient(opts *redis.Options, timeout time.Duration, poolSize int) *redis.Client {
	opts.PoolSize = poolSize
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.PoolTimeout = timeout, timeout, timeout, timeout
	opts.ContextTimeoutEnabled = true
	opts.MaxRetries = -1
	opts.DialerRetries = 1
	// Fewer round trips when connecting; neither feature is used.
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(opts)
}

// BreakerValue maps gobreaker's states onto the breaker gauges' documented
// values: 0 closed, 1 half-open, 2 open.
func BreakerValue(s gobreaker.State) float64 {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}
