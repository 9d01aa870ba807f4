// Package ratelimit limits each caller's requests per route class (reads,
// writes, reports) across all pods, in Redis, with go-redis/redis_rate's
// GCRA: one Lua call checks and charges a caller's quota. auth.Gate asks it
// after verifying the token, so the caller is the token's subject; a
// refusal is errs.TooMany, answered 429 with Retry-After.
//
// Every answer carries the RateLimit-Policy and RateLimit header fields of
// draft-ietf-httpapi-ratelimit-headers-11 (May 2026), e.g.
//
//	RateLimit-Policy: "reads";q=600;w=60
//	RateLimit: "reads";r=598;t=1
//
// q and w are the class's quota (Config.Reads, "600/1m"): q requests at
// once after w seconds of quiet, q per w seconds sustained, spread
// evenly. r is what the caller may send at once now, t the seconds until
// the whole quota is back (the draft's effective window; GCRA also gives
// back one request every w/q seconds in between). A refused request gets
// r=0, t and Retry-After both the seconds until the next one may pass. No
// partition key is sent: the quota is the caller's own, whoever asks.
//
// Redis is optional: when it fails, times out or the circuit breaker skips
// it, the request goes on unlimited (fail open), counted in
// taskfn_ratelimit_fail_open_total, without a RateLimit field.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/sony/gobreaker/v2"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/function"
	"github.com/taskfn/taskfn/shared/redisx"
)

// Class is a kind of route with a quota of its own: a caller's reads do not
// use up its writes.
type Class uint8

const (
	// Reads: GET routes but the report ones.
	Reads Class = iota
	// Writes: POST, PATCH and DELETE routes but the report ones.
	Writes
	// Reports: every report route (request-report, get-report,
	// get-report-content), whatever its method: building one is costly.
	Reports
	numClasses
)

var classNames = [numClasses]string{"reads", "writes", "reports"}

// String is the class's name, the policy name in the headers.
func (c Class) String() string {
	if c < numClasses {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// envName is the variable that sets c's quota.
func (c Class) envName() string { return "RATE_LIMIT_" + strings.ToUpper(c.String()) }

// Limiter checks callers' quotas. Its methods are safe for concurrent use;
// a nil or disabled Limiter limits nothing.
type Limiter struct {
	cfg      Config
	quotas   [numClasses]Quota
	limits   [numClasses]redis_rate.Limit
	policies [numClasses]string // RateLimit-Policy field values
	refusals [numClasses]*errs.Error
	log      zerolog.Logger
	m        *instruments

	rdb     *redis.Client // nil when disabled
	gcra    *redis_rate.Limiter
	breaker *gobreaker.TwoStepCircuitBreaker[struct{}]
	leases  *leases // nil when RATE_LIMIT_LEASE is 0
}

// New returns the limiter cfg describes, its metrics registered on reg. It
// makes no Redis call: the first check connects.
func New(cfg Config, reg prometheus.Registerer, log zerolog.Logger) (*Limiter, error) {
	if reg == nil {
		return nil, errors.New("ratelimit: New needs a registry")
	}
	m, err := newInstruments(reg)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: metrics: %w", err)
	}
	l := &Limiter{cfg: cfg, log: log.With().Str("component", "ratelimit").Logger(), m: m}
	if !cfg.Enabled {
		return l, nil
	}
	opts, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	l.quotas = cfg.quotas()
	for c, q := range l.quotas {
		name := Class(c).String()
		l.limits[c] = redis_rate.Limit{Rate: q.Count, Burst: q.Count, Period: q.Window}
		l.policies[c] = `"` + name + `";q=` + strconv.Itoa(q.Count) + ";w=" + strconv.Itoa(int(q.Window/time.Second))
		l.refusals[c] = errs.New(errs.TooMany, "rate limit exceeded: "+name,
			"this caller's quota of "+name+" is used up; retry after the seconds in Retry-After (RateLimit-Policy tells the quota)")
	}
	l.rdb = redisx.NewClient(opts, cfg.Timeout, cfg.PoolSize)
	l.gcra = redis_rate.NewLimiter(l.rdb)
	l.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "ratelimit-redis",
		MaxRequests: cfg.BreakerProbes,
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= cfg.BreakerFailures },
		// An error reply came from a Redis that answers quickly: only
		// timeouts and broken connections trip.
		IsSuccessful: func(err error) bool { return err == nil || answered(err) },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breaker.Set(redisx.BreakerValue(to))
			l.log.Warn().Str("from", from.String()).Str("to", to.String()).Msg("rate limiter's redis circuit breaker; requests go on unlimited while it is open")
		},
	})
	if cfg.Lease > 0 {
		l.leases = newLeases(cfg.Lease)
	}
	return l, nil
}

// Open is New for function b: on its registry and logger, closed with it.
func Open(b *function.Base, cfg Config) (*Limiter, error) {
	l, err := New(cfg, b.Registry, b.Log)
	if err != nil {
		return nil, err
	}
	b.OnClose("rate limiter", l.Close)
	return l, nil
}

// Close closes the Redis client.
func (l *Limiter) Close() error {
	if l == nil || l.rdb == nil {
		return nil
	}
	return l.rdb.Close()
}

func (l *Limiter) enabled() bool { return l != nil && l.rdb != nil }

// ByMethod is the gate hook for routes whose method says their class: GET
// and HEAD are Reads, the rest Writes. It is nil (no hook) when l is nil
// or disabled.
func (l *Limiter) ByMethod() auth.LimitFunc {
	if !l.enabled() {
		return nil
	}
	return func(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
		class := Writes
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			class = Reads
		}
		return l.check(w, r, class, id.Subject)
	}
}

// As is the gate hook limiting every route as class (the report routes
// are Reports, whatever their method). It is nil when l is nil or
// disabled.
func (l *Limiter) As(class Class) auth.LimitFunc {
	if !l.enabled() {
		return nil
	}
	return func(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
		return l.check(w, r, class, id.Subject)
	}
}

// check is the gate's question: the headers on w, and errs.TooMany when
// the caller is over its quota.
func (l *Limiter) check(w http.ResponseWriter, r *http.Request, class Class, subject string) error {
	d, err := l.Allow(r.Context(), class, subject)
	if err != nil {
		zerolog.Ctx(r.Context()).Debug().Err(err).Str("class", class.String()).Msg("rate limit not checked; the request goes on")
	}
	d.SetHeaders(w.Header())
	if !d.Allowed {
		return l.refusals[class].After(d.RetryAfter)
	}
	return nil
}

// Decision is the answer to one check.
type Decision struct {
	Class   Class
	Quota   Quota
	Allowed bool
	// Remaining is how many more requests the caller may send at once.
	Remaining int
	// Reset is the time until the caller's whole quota is back.
	Reset time.Duration
	// RetryAfter, when refused, is the time until the next request may pass.
	RetryAfter time.Duration
	// FailedOpen: allowed without a check, Redis having failed or been
	// skipped; Remaining and Reset mean nothing then.
	FailedOpen bool

	policy string // RateLimit-Policy's value
}

// Header field names, as net/http canonicalizes them.
const (
	headerPolicy    = "Ratelimit-Policy"
	headerRateLimit = "Ratelimit"
)

// SetHeaders sets RateLimit-Policy and, unless the check failed open,
// RateLimit on h.
func (d Decision) SetHeaders(h http.Header) {
	if d.policy == "" {
		return // no quota checked: limiting is off
	}
	h[headerPolicy] = []string{d.policy}
	if d.FailedOpen {
		return
	}
	left := d.Reset
	if !d.Allowed {
		// The draft: Retry-After must not end before the effective window.
		left = d.RetryAfter
	}
	b := make([]byte, 0, 40)
	b = append(b, '"')
	b = append(b, d.Class.String()...)
	b = append(b, `";r=`...)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, seconds(left), 10)
	h[headerRateLimit] = []string{string(b)}
}

// seconds is d in whole seconds, rounded up as Retry-After is (httpx).
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Allow checks and charges one request of subject in class. It never
// refuses because of Redis: when Redis fails, times out or the breaker is
// open, the decision allows the request and says FailedOpen, the failure
// is counted in taskfn_ratelimit_fail_open_total, and err tells why. An
// unknown class is an error too, and allowed.
func (l *Limiter) Allow(ctx context.Context, class Class, subject string) (Decision, error) {
	if class >= numClasses {
		return Decision{Class: class, Allowed: true, FailedOpen: true}, fmt.Errorf("ratelimit: unknown class %d", class)
	}
	if !l.enabled() {
		return Decision{Class: class, Allowed: true}, nil
	}
	d := Decision{Class: class, Quota: l.quotas[class], policy: l.policies[class]}
	var err error
	if l.leases != nil {
		err = l.allowLeased(ctx, &d, subject)
	} else {
		var res *redis_rate.Result
		if res, err = l.ask(ctx, class, subject, 1); err == nil {
			d.Allowed, d.Remaining, d.Reset, d.RetryAfter = res.Allowed > 0, res.Remaining, res.ResetAfter, max(res.RetryAfter, 0)
		}
	}
	if err != nil {
		l.m.failOpen[class].Inc()
		d.Allowed, d.FailedOpen, d.Remaining, d.Reset, d.RetryAfter = true, true, 0, 0, 0
		return d, err
	}
	if !d.Allowed {
		l.m.limited[class].Inc()
	}
	return d, nil
}

// ask takes up to n requests of subject's quota in class from Redis, under
// the breaker and REDIS_TIMEOUT. The caller's cancellation is ignored: the
// call is short, and a client that hangs up must not count as a Redis
// failure.
func (l *Limiter) ask(ctx context.Context, class Class, subject string, n int) (*redis_rate.Result, error) {
	done, err := l.breaker.Allow()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis skipped: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Timeout)
	defer cancel()
	l.m.redisCalls[class].Inc()
	key := l.cfg.KeyPrefix + class.String() + ":" + subject
	res, err := l.gcra.AllowAtMost(ctx, key, l.limits[class], n)
	done(err)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	return res, nil
}

// answered reports whether err is a reply from Redis rather than a
// failure to reach it.
func answered(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply)
}
