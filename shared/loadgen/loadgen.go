// Package loadgen drives closed-loop load against HTTP services and
// measures what the machine can do at all: a fixed number of workers, each
// sending its next request as soon as the previous one answered, over
// keep-alive connections, with a warm-up that is not measured. It also
// serves the ceilings our functions are compared with (see ceiling.go).
// BenchmarkLoad (make bench) runs the real functions through it.
package loadgen

import (
	"context"
	"math"
	"math/bits"
	"sync"
	"time"
)

// Step sends one request as worker (0 to Concurrency-1) and reports
// whether it got the answer it wanted.
type Step func(ctx context.Context, worker int) error

// Options shape a run. The same Concurrency for every scenario makes the
// figures comparable with their ceilings.
type Options struct {
	Concurrency int
	// Warmup runs before measuring: connections are opened, caches and
	// JIT-like effects (pools, buffers, the token cache) settle.
	Warmup   time.Duration
	Duration time.Duration
	// CPU, if set, is read as the measured window opens and closes, so
	// the result says where the machine's CPU went meanwhile.
	CPU func() CPUTime
}

// Result is what a measured window gave.
type Result struct {
	Name string
	// Requests answered as wanted, and the others, among those sent in
	// the measured window.
	Requests, Errors int64
	FirstError       error
	Duration         time.Duration
	// Latency holds the successful requests.
	Latency *Histogram
	// CPU is the CPU time used during the measured window, by group;
	// nil unless Options.CPU was set.
	CPU CPUTime
}

// Rate is successful requests per second.
func (r Result) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// Merge adds o, a later run of the same scenario, to r: counts, time and
// latencies add up, so alternating short runs of two scenarios compare
// them under the same conditions.
func (r *Result) Merge(o Result) {
	if r.Latency == nil {
		r.Latency = NewHistogram()
	}
	if r.Name == "" {
		r.Name = o.Name
	}
	r.Requests += o.Requests
	r.Errors += o.Errors
	r.Duration += o.Duration
	if o.Latency != nil {
		r.Latency.Merge(o.Latency)
	}
	if r.FirstError == nil {
		r.FirstError = o.FirstError
	}
	r.CPU = r.CPU.Add(o.CPU)
}

// CPUPerRequest is the CPU time of group spent per successful request.
func (r Result) CPUPerRequest(group string) time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU[group] / time.Duration(r.Requests)
}

// Run runs step on o.Concurrency workers for o.Warmup, then for o.Duration
// measured. A request counts in the window it was sent in; the last ones
// may end a little after it. It returns early, with what it has, when ctx
// ends.
func Run(ctx context.Context, name string, o Options, step Step) Result {
	start := time.Now()
	from := start.Add(o.Warmup)
	end := from.Add(o.Duration)
	type tally struct {
		h        *Histogram
		ok, errs int64
		first    error
	}
	tallies := make([]tally, o.Concurrency)
	var wg sync.WaitGroup
	var cpu CPUTime
	if o.CPU != nil {
		wg.Go(func() {
			if !sleepUntil(ctx, from) {
				return
			}
			before := o.CPU()
			if !sleepUntil(ctx, end) {
				return
			}
			cpu = o.CPU().Sub(before)
		})
	}
	for w := range o.Concurrency {
		tallies[w].h = NewHistogram()
		wg.Go(func() {
			t := &tallies[w]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := step(ctx, w)
				d := time.Since(t0)
				if t0.Before(from) {
					continue
				}
				if err != nil {
					t.errs++
					if t.first == nil {
						t.first = err
					}
					continue
				}
				t.ok++
				t.h.Record(d)
			}
		})
	}
	wg.Wait()
	r := Result{Name: name, Duration: o.Duration, Latency: NewHistogram(), CPU: cpu}
	if stopped := time.Since(from); stopped < o.Duration {
		r.Duration = max(stopped, 0)
	}
	for _, t := range tallies {
		r.Requests += t.ok
		r.Errors += t.errs
		r.Latency.Merge(t.h)
		if r.FirstError == nil {
			r.FirstError = t.first
		}
	}
	return r
}

// sleepUntil waits for t, or returns false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Histogram counts durations in log-linear buckets: exact below 128ns,
// then 128 buckets per power of two, so a quantile is off by less than
// 0.8%. Its size is fixed whatever the run's length. Not safe for
// concurrent use: Run gives each worker its own and merges them.
type Histogram struct {
	counts [buckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits = 7
	sub     = 1 << subBits
	buckets = (64 - subBits + 1) * sub
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram { return &Histogram{} }

func bucketOf(ns uint64) int {
	if ns < sub {
		return int(ns)
	}
	shift := bits.Len64(ns) - 1 - subBits
	return (shift+1)*sub + int(ns>>shift) - sub
}

// bucketTop is the largest duration bucket i holds.
func bucketTop(i int) time.Duration {
	if i < sub {
		return time.Duration(i)
	}
	shift := i/sub - 1
	mantissa := uint64(i%sub + sub)
	top := (mantissa+1)<<shift - 1
	if top > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(top)
}

// Record adds one duration; negative ones count as 0.
func (h *Histogram) Record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Quantile returns the duration at or below which a fraction q of the
// recorded ones lie (the top of its bucket, never above the maximum);
// 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketTop(i), h.max)
		}
	}
	return h.max
}
