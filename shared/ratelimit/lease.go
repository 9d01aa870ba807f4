package ratelimit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Leases: a busy caller's requests taken from Redis ahead.
//
// One Redis round trip per request costs about as much CPU as the cached
// GET /tasks/{id} it guards (a Lua call of ~12 µs in Redis, plus a round
// trip on both sides; BENCHMARKS.md). So for a caller busy on a pod, the
// pod asks Redis for several requests at once (redis_rate's AllowAtMost)
// and spends them itself for up to RATE_LIMIT_LEASE:
//
//   - a caller's first request in a class on a pod takes one;
//   - a lease spent before it expired doubles the next one, up to a
//     tenth of the quota; one that expired with requests left halves it;
//   - a refusal is kept until Redis's retry-after: nothing passes before
//     then on any pod, so the pod answers 429 without asking.
//
// Requests are charged in Redis when taken, so a caller never gets more
// than its quota over all pods. What a pod took and did not spend before
// its lease expired is lost: at most a tenth of the quota per pod, and only
// for callers sending fast enough to have grown a lease. Quotas under 20
// are never leased (a tenth is under two): every request asks Redis.
//
// A caller's requests in a class on one pod wait for each other's Redis
// call (bounded by REDIS_TIMEOUT) instead of each taking a lease.
type leases struct {
	ttl  time.Duration
	idle time.Duration // a lease unused this long is dropped

	mu    sync.RWMutex
	m     map[leaseKey]*lease
	swept time.Time
}

type leaseKey struct {
	class   Class
	subject string
}

// lease is one caller's state in one class on this pod.
type lease struct {
	mu        sync.Mutex
	tokens    int       // requests taken from Redis and not yet spent
	until     time.Time // tokens, or a refusal, hold until then
	refused   bool      // Redis refused: so is every request until `until`
	batch     int       // requests the next Redis call asks for
	remaining int       // Redis's count of what was left after the last call
	reset     time.Time // when the whole quota is back, per the last call

	used atomic.Int64 // UnixNano of the last request, for sweeping
}

func newLeases(ttl time.Duration) *leases {
	return &leases{ttl: ttl, idle: max(time.Second, 10*ttl), m: map[leaseKey]*lease{}, swept: time.Now()}
}

// get returns k's lease, made on first use. Adding one sweeps out those
// idle for a while, so the map holds about the callers active lately.
func (ls *leases) get(k leaseKey, now time.Time) *lease {
	ls.mu.RLock()
	e := ls.m[k]
	ls.mu.RUnlock()
	if e == nil {
		ls.mu.Lock()
		if e = ls.m[k]; e == nil {
			e = &lease{batch: 1}
			ls.m[k] = e
		}
		if now.Sub(ls.swept) > ls.idle {
			cutoff := now.Add(-ls.idle).UnixNano()
			for k, old := range ls.m {
				if old != e && old.used.Load() < cutoff {
					delete(ls.m, k)
				}
			}
			ls.swept = now
		}
		ls.mu.Unlock()
	}
	e.used.Store(now.UnixNano())
	return e
}

// size is the number of leases held, for tests.
func (ls *leases) size() int {
	ls.mu.RLock()
	defer ls.mu.RUnlock()
	return len(ls.m)
}

// leaseCap is the most requests one Redis call takes for class q.
func leaseCap(q Quota) int { return max(1, q.Count/10) }

// allowLeased fills d from subject's lease in d.Class, asking Redis when
// the lease is spent or expired. An error is Redis's: d is then unset.
func (l *Limiter) allowLeased(ctx context.Context, d *Decision, subject string) error {
	e := l.leases.get(leaseKey{d.Class, subject}, time.Now())
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	if now.Before(e.until) {
		if e.refused {
			d.RetryAfter, d.Reset = e.until.Sub(now), e.reset.Sub(now)
			return nil
		}
		if e.tokens > 0 {
			e.tokens--
			d.Allowed, d.Remaining, d.Reset = true, e.remaining+e.tokens, e.reset.Sub(now)
			return nil
		}
		// Spent before it expired: this caller is busy here.
		e.batch = min(2*e.batch, leaseCap(d.Quota))
	} else if e.tokens > 0 {
		// Expired with requests left: it was more than the caller needed.
		e.batch = max(e.batch/2, 1)
	}
	e.tokens = 0
	res, err := l.ask(ctx, d.Class, subject, e.batch)
	if err != nil {
		return err
	}
	now = time.Now()
	e.reset = now.Add(res.ResetAfter)
	if res.Allowed == 0 {
		e.refused, e.until, e.batch = true, now.Add(res.RetryAfter), 1
		d.RetryAfter, d.Reset = res.RetryAfter, res.ResetAfter
		return nil
	}
	e.refused, e.until = false, now.Add(l.leases.ttl)
	e.tokens, e.remaining = res.Allowed-1, res.Remaining
	d.Allowed, d.Remaining, d.Reset = true, res.Remaining+e.tokens, res.ResetAfter
	return nil
}
