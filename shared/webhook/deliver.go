package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"

	"github.com/taskfn/taskfn/shared/egress"
	"github.com/taskfn/taskfn/shared/project"
)

// Deliverer makes attempts: it claims deliveries, sends each holding
// nothing in the database, then marks the outcome. Attempts run
// concurrently, at most cfg.Concurrency at a time, each bounded by
// cfg.Timeout, so a slow or dead receiver holds up only its own.
type Deliverer struct {
	store  *Store
	roles  *project.Resolver
	cfg    Config
	policy egress.Policy
	client *http.Client
	slots  chan struct{}
	now    func() time.Time
	m      *Metrics // nil: not measured
	// background attempts the sink left running when it answered.
	inflight sync.WaitGroup
}

// NewDeliverer returns a Deliverer over store, deciding visibility with
// roles (the members table, read live), measured by m (nil: not).
func NewDeliverer(store *Store, roles *project.Resolver, cfg Config, m *Metrics) (*Deliverer, error) {
	if store == nil || roles == nil {
		return nil, errors.New("webhook: NewDeliverer needs the store and the roles")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := cfg.Policy()
	return &Deliverer{store: store, roles: roles, cfg: cfg, policy: p, client: p.Client(),
		slots: make(chan struct{}, cfg.Concurrency), now: time.Now, m: m}, nil
}

// Wait waits for the attempts the sink left running; the function calls
// it on shutdown (each is bounded by WEBHOOK_TIMEOUT).
func (d *Deliverer) Wait() error {
	d.inflight.Wait()
	return nil
}

// lease is how long a claim holds a delivery: past its attempt's bound,
// with room for the marking.
func (d *Deliverer) lease() time.Duration { return d.cfg.Timeout + 30*time.Second }

// Result counts what a run of attempts did.
type Result struct {
	Delivered int   `json:"delivered"`
	Retrying  int   `json:"retrying"`
	Failed    int   `json:"failed"`
	Dropped   int   `json:"dropped"`
	Disabled  int   `json:"disabled"`
	LeaseLost int   `json:"lease_lost"`
	Pruned    int64 `json:"pruned"`   // finished deliveries past WEBHOOK_DELIVERY_RETENTION deleted
	Complete  bool  `json:"complete"` // false: the budget ran out with more due
}

func (r *Result) add(o Outcome, f Finished) {
	switch {
	case f.LeaseLost:
		r.LeaseLost++
		return
	case o.State == "delivered":
		r.Delivered++
	case o.State == "pending":
		r.Retrying++
	case o.State == "failed":
		r.Failed++
	case o.State == "dropped":
		r.Dropped++
	}
	if f.Disabled {
		r.Disabled++
	}
}

// attemptAll sends each of cs concurrently and marks it; ctx bounds the
// marking, each send its own timeout.
func (d *Deliverer) attemptAll(ctx context.Context, cs []Claimed) (Result, error) {
	var (
		mu    sync.Mutex
		res   Result
		first error
		wg    sync.WaitGroup
	)
	for _, c := range cs {
		d.slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-d.slots }()
			o := d.attempt(ctx, c)
			f, err := d.store.Finish(ctx, c, o, d.cfg.DisableAfter)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				// Unmarked: the lease ends and the tick tries again.
				if first == nil {
					first = err
				}
				return
			}
			res.add(o, f)
			d.m.observe(o, f)
		})
	}
	wg.Wait()
	return res, first
}

// attempt decides whether c may still go out, sends it if so, and says
// what became of it.
func (d *Deliverer) attempt(ctx context.Context, c Claimed) Outcome {
	acc, err := d.roles.Access(ctx, c.Owner.Identity())
	if err != nil {
		return d.retry(c, Outcome{Error: "could not read the owner's roles: " + err.Error()}, 0)
	}
	if !CanReceive(acc, c.Project, c.Projects) {
		return Outcome{State: "dropped", Error: "the webhook's owner may no longer see this event"}
	}
	secret, err := d.store.Secret(c)
	if err != nil {
		// The key changed: no retry can help until an operator acts, but
		// the failure counts, so the owner hears of it.
		return d.retry(c, Outcome{Error: err.Error(), Failure: true}, 0)
	}
	var ev event.Event
	if err := json.Unmarshal(c.Event, &ev); err != nil {
		return Outcome{State: "failed", Error: "the stored event does not decode: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, nil)
	if err != nil {
		return Outcome{State: "failed", Error: "the URL does not make a request: " + err.Error()}
	}
	wctx := binding.WithForceStructured(ctx)
	if c.ContentMode == Binary {
		wctx = binding.WithForceBinary(ctx)
	}
	if err := cehttp.WriteRequest(wctx, binding.ToMessage(&ev), req); err != nil {
		return Outcome{State: "failed", Error: "the event does not encode: " + err.Error()}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return Outcome{State: "failed", Error: "the event does not encode: " + err.Error()}
	}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	// The event id is the message id: the same on every retry, so
	// receivers can deduplicate; the timestamp is the attempt's.
	for k, v := range secret.Headers(c.EventID, d.now(), body) {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "taskfn-webhooks/1")
	start := d.now()
	resp, err := d.client.Do(req)
	latency := d.now().Sub(start)
	if err != nil {
		return d.retry(c, Outcome{Latency: latency, Error: storable(err.Error()), Failure: true}, 0)
	}
	answer, _ := d.policy.ReadBody(resp)
	_ = resp.Body.Close()
	o := Outcome{StatusCode: resp.StatusCode, Latency: latency}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		o.State = "delivered"
		return o
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		o.Error = "redirects are not followed: answer 2xx at the registered URL"
	default:
		o.Error = storable(fmt.Sprintf("HTTP %d: %s", resp.StatusCode, answer))
	}
	o.Failure = true
	return d.retry(c, o, retryAfter(resp.Header.Get("Retry-After"), d.now()))
}

// storable is what a receiver said, as the delivery's error keeps it:
// valid UTF-8 without NUL (PostgreSQL's text refuses both, and the mark
// would fail), at most 500 bytes.
func storable(s string) string {
	return clip(strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", ""), 500)
}

// retry makes o a retry at the next backoff step, or a failure if c has
// had its attempts. after is the receiver's Retry-After (0: none).
func (d *Deliverer) retry(c Claimed, o Outcome, after time.Duration) Outcome {
	n := c.Attempts + 1
	if n >= d.cfg.MaxAttempts {
		o.State = "failed"
		return o
	}
	o.State, o.Next = "pending", d.now().Add(max(Backoff(d.cfg.RetryBase, d.cfg.RetryMax, n, rand.Float64()), min(after, d.cfg.RetryMax)))
	return o
}

// Backoff is the wait after the n-th failed attempt (n ≥ 1): base·2ⁿ⁻¹
// capped at most, jittered by r in [0,1) to between half and all of it,
// so receivers that failed together are not retried together.
func Backoff(base, most time.Duration, n int, r float64) time.Duration {
	d := most
	if n < 40 && base<<(n-1) > 0 && base<<(n-1) < most {
		d = base << (n - 1)
	}
	return d/2 + time.Duration(r*float64(d/2))
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(min(s, 1<<20)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// pruneBatch bounds the deliveries one tick deletes.
const pruneBatch = 5000

// Run is one tick: it deletes a batch of deliveries past their
// retention, then claims due deliveries batch after batch and attempts
// them, within the budget.
func (d *Deliverer) Run(ctx context.Context) (Result, error) {
	var res Result
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Budget)
	defer cancel()
	n, err := d.store.Prune(ctx, d.now().Add(-d.cfg.DeliveryRetention), pruneBatch)
	if err != nil {
		return res, err
	}
	res.Pruned = n
	for ctx.Err() == nil {
		cs, err := d.store.Claim(ctx, nil, d.cfg.BatchSize, d.lease())
		if err != nil {
			if ctx.Err() != nil {
				return res, nil // the budget ran out: the next tick goes on
			}
			return res, err
		}
		// The attempts of a claim are finished even when the budget ends
		// meanwhile: each is bounded by its own timeout.
		r, err := d.attemptAll(context.WithoutCancel(ctx), cs)
		res.merge(r)
		if err != nil {
			return res, err
		}
		if len(cs) < d.cfg.BatchSize {
			res.Complete = true
			return res, nil
		}
	}
	return res, nil
}

func (r *Result) merge(o Result) {
	r.Delivered += o.Delivered
	r.Retrying += o.Retrying
	r.Failed += o.Failed
	r.Dropped += o.Dropped
	r.Disabled += o.Disabled
	r.LeaseLost += o.LeaseLost
}

// Start makes the first attempts of ids, the deliveries the sink just
// stored, and waits for them at most wait; those still running go on in
// the background (Wait), each bounded by its timeout, and are marked when
// done. A process that dies meanwhile leaves them to the tick when their
// leases end. Deliveries of a webhook already failing are left to the
// tick's backoff.
func (d *Deliverer) Start(ctx context.Context, ids []uuid.UUID, wait time.Duration) (Result, error) {
	if len(ids) == 0 {
		return Result{}, nil // and never Claim(nil): that claims whatever is due
	}
	cs, err := d.store.Claim(ctx, ids, len(ids), d.lease())
	if err != nil || len(cs) == 0 {
		return Result{}, err
	}
	type done struct {
		res Result
		err error
	}
	ch := make(chan done, 1)
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		r, err := d.attemptAll(context.WithoutCancel(ctx), cs)
		ch <- done{r, err}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-t.C:
		return Result{}, nil
	}
}
