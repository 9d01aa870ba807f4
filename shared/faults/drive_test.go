//go:build faults

package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// result is one write a client tried and what it was answered.
type result struct {
	Op     string // "create" or "update"
	Worker int
	Task   uuid.UUID // the task written; for a create, from its answer
	// Title is unique to the request: finding it in the database or the
	// outbox tells that this request's change committed. Status is the
	// status it asked for alongside.
	Title, Status string
	IfMatch       int64 // an update's If-Match version
	Code          int   // 0: no answer
	Err           string
	// Sent: the request may have reached the function (a connection was
	// made). A write refused at connect never reached it.
	Sent        bool
	RetryAfter  string
	ContentType string
	Version     int64  // of the task a 2xx answer returned
	Body        string // the answer's body unless 2xx
	Start, End  time.Time
}

func (r result) ok() bool { return r.Code == http.StatusOK || r.Code == http.StatusCreated }

// driver sends creates and updates through the functions from a few
// workers, each writing only tasks it created, so every answer can be
// checked against the database afterwards.
type driver struct {
	create, update string // base URLs
	token          string
	client         *http.Client
	// db is the test's own connection to the database: after a write
	// whose outcome is unknown, the worker reads the task's version there.
	db *pgxpool.Pool
	// backoff is the pause after a write that was not acknowledged. Short,
	// and Retry-After is not honoured: the recovery times measure the
	// functions, not the client's patience.
	backoff time.Duration

	mu      sync.Mutex
	results []result
	created []uuid.UUID // acknowledged creates
}

func newDriver(create, update, token string, db *pgxpool.Pool, keepAlive bool) *driver {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		DisableKeepAlives:   !keepAlive,
	}
	return &driver{
		create: create, update: update, token: token, db: db,
		client:  &http.Client{Transport: tr, Timeout: 20 * time.Second},
		backoff: 20 * time.Millisecond,
	}
}

// run drives workers until ctx ends, then returns once each has finished
// the request it was making: no request is cut by the end of the run.
func (d *driver) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { d.worker(ctx, w) })
	}
	wg.Wait()
}

// tried is the number of writes answered (or not) so far.
func (d *driver) tried() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.results)
}

// all is every result so far.
func (d *driver) all() []result {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]result(nil), d.results...)
}

// someTask is one of the tasks created so far, drawn with rng; false if
// there is none yet.
func (d *driver) someTask(rng *rand.Rand) (uuid.UUID, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.created) == 0 {
		return uuid.Nil, false
	}
	return d.created[rng.IntN(len(d.created))], true
}

// owned is a task a worker created: the version it knows, or unsure when
// a write's outcome is unknown (the version is then read from the
// database before the next update).
type owned struct {
	id      uuid.UUID
	version int64
	unsure  bool
}

var statuses = []string{"todo", "in_progress", "blocked", "done", "cancelled"}

func (d *driver) worker(ctx context.Context, w int) {
	rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	var mine []*owned
	for seq := 1; ctx.Err() == nil; seq++ {
		title := fmt.Sprintf("w%d-%d", w, seq)
		status := statuses[rng.IntN(len(statuses))]
		var r result
		if len(mine) < 3 || rng.IntN(3) == 0 {
			r = d.send(w, "create", uuid.Nil, title, status, 0)
			if r.Code == http.StatusCreated {
				mine = append(mine, &owned{id: r.Task, version: r.Version})
			}
		} else {
			o := mine[rng.IntN(len(mine))]
			if o.unsure {
				qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				// FOR UPDATE waits for a transaction still holding the
				// row: a COMMIT the killed function sent may be under way.
				err := d.db.QueryRow(qctx, "SELECT version FROM tasks WHERE id = $1 FOR UPDATE", o.id).Scan(&o.version)
				cancel()
				if err != nil {
					time.Sleep(d.backoff)
					continue
				}
				o.unsure = false
			}
			r = d.send(w, "update", o.id, title, status, o.version)
			switch {
			case r.Code == http.StatusOK:
				o.version = r.Version
			case r.Code == 0 && r.Sent, r.Code == http.StatusPreconditionFailed:
				o.unsure = true
			}
		}
		d.mu.Lock()
		d.results = append(d.results, r)
		if r.Op == "create" && r.ok() {
			d.created = append(d.created, r.Task)
		}
		d.mu.Unlock()
		if !r.ok() {
			time.Sleep(d.backoff)
		}
	}
}

// send makes one write and records its answer. Its own context, not the
// run's: the end of a run lets it finish.
func (d *driver) send(w int, op string, id uuid.UUID, title, status string, ifMatch int64) result {
	r := result{Op: op, Worker: w, Task: id, Title: title, Status: status, IfMatch: ifMatch, Start: time.Now()}
	body, _ := json.Marshal(map[string]string{"title": title, "status": status})
	var req *http.Request
	if op == "create" {
		req, _ = http.NewRequest(http.MethodPost, d.create+"/tasks", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req, _ = http.NewRequest(http.MethodPatch, d.update+"/tasks/"+id.String(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/merge-patch+json")
		req.Header.Set("If-Match", `"`+strconv.FormatInt(ifMatch, 10)+`"`)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := d.client.Do(req)
	if err != nil {
		r.End, r.Err = time.Now(), err.Error()
		var oe *net.OpError
		r.Sent = !(errors.As(err, &oe) && oe.Op == "dial")
		return r
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r.End = time.Now()
	if err != nil {
		// The status came, the body did not: the function died while
		// writing its answer. Counted as no answer.
		r.Err, r.Sent = "reading the body: "+err.Error(), true
		return r
	}
	r.Code, r.Sent = resp.StatusCode, true
	r.RetryAfter, r.ContentType = resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type")
	if !r.ok() {
		r.Body = string(b)
		return r
	}
	var t struct {
		ID      uuid.UUID `json:"id"`
		Title   string    `json:"title"`
		Version int64     `json:"version"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.Title != title {
		r.Err = fmt.Sprintf("answer %d is not the task written (%v): %s", r.Code, err, b)
	}
	r.Task, r.Version = t.ID, t.Version
	if etag := strings.Trim(resp.Header.Get("ETag"), `"`); etag != strconv.FormatInt(t.Version, 10) {
		r.Err = fmt.Sprintf("ETag %q, body version %d", resp.Header.Get("ETag"), t.Version)
	}
	return r
}
