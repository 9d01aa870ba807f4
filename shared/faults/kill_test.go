//go:build faults

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// kills is how many times TestKillMidWrite kills a function.
const kills = 25

// TestKillMidWrite kills create-task and update-task with SIGKILL at
// random moments under write load, kills times, restarting each at once
// on its port, while get-task serves reads. Whatever a kill cut short:
// no task lacks its task.created row and no change is half-applied (see
// dbState.consistent), every acknowledged write is there, no cache entry
// is newer than the database or differs from the task at its version, and
// no read was answered a version older than one already acknowledged.
func TestKillMidWrite(t *testing.T) {
	r := newRig(t)
	env := append(r.env, "DATABASE_URL="+r.pg.URL(database))
	create := startFunction(t, "create-task", env)
	update := startFunction(t, "update-task", env)
	get := startFunction(t, "get-task", env)
	// No keep-alive: a connection refused while a function is down then
	// tells a write that never reached it from one cut short.
	d := newDriver(create.url, update.url, r.token, r.db, false)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.run(ctx, workers) })
	rd := &reader{url: get.url, token: r.token, client: &http.Client{Timeout: 10 * time.Second}}
	wg.Go(func() { rd.run(ctx, d) })

	start := time.Now()
	rng := rand.New(rand.NewPCG(1, uint64(start.UnixNano())))
	var downtime time.Duration
	for range kills {
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		victim := create
		if rng.IntN(2) == 0 {
			victim = update
		}
		killed := time.Now()
		victim.kill()
		victim.start()
		downtime += time.Since(killed)
	}
	time.Sleep(500 * time.Millisecond) // writes after the last restart
	cancel()
	wg.Wait()
	took := time.Since(start)
	results := d.all()

	tl, st := r.check(t, results, true)
	if tl.unanswered == 0 {
		t.Errorf("no write was cut short by %d kills: the test did not test", kills)
	}
	checkCtx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	entries, bad, err := st.cacheEntries(checkCtx, r.rdb, r.prefix)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "cache", bad)
	report(t, "reads after the run", st.reads(checkCtx, get.url, r.token, lastAcked(results)))
	report(t, "reads during the run", rd.check(results))
	for _, f := range []*function{create, update, get} {
		for _, l := range f.errorLines() {
			t.Errorf("%s logged an error: %s", f.name, l)
		}
	}
	_, cs := create.pid()
	_, us := update.pid()
	t.Logf("%d kills survived (create-task %d, update-task %d) in %s, %s restarting; %s; %d tasks, %d outbox rows, %d cache entries checked; %d reads during the run",
		kills, cs-1, us-1, took.Round(100*time.Millisecond), downtime.Round(10*time.Millisecond), tl, len(st.tasks), st.events, entries, len(rd.reads))
}

// reader reads tasks through get-task while the writes go on.
type reader struct {
	url, token string
	client     *http.Client

	reads []read
}

type read struct {
	task       uuid.UUID
	start      time.Time
	code       int
	version    int64
	err, title string
}

func (rd *reader) run(ctx context.Context, d *driver) {
	rng := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		id, ok := d.someTask(rng)
		if !ok {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		rd.reads = append(rd.reads, rd.get(id))
		time.Sleep(2 * time.Millisecond)
	}
}

func (rd *reader) get(id uuid.UUID) read {
	r := read{task: id, start: time.Now()}
	req, _ := http.NewRequest(http.MethodGet, rd.url+"/tasks/"+id.String(), nil)
	req.Header.Set("Authorization", "Bearer "+rd.token)
	resp, err := rd.client.Do(req)
	if err != nil {
		r.err = err.Error()
		return r
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	r.code = resp.StatusCode
	var e snapshot
	if err != nil || json.Unmarshal(b, &e) != nil || r.code != http.StatusOK {
		r.err = fmt.Sprintf("%v %s", err, b)
		return r
	}
	r.version, r.title = e.Version, e.Title
	return r
}

// check finds reads answered a version older than one acknowledged
// before the read was sent (docs/cache.md's promise), and failed reads.
func (rd *reader) check(results []result) []string {
	var bad []string
	for _, rr := range rd.reads {
		if rr.code != http.StatusOK {
			bad = append(bad, fmt.Sprintf("GET %s at %s: %d %s", rr.task, rr.start.Format("15:04:05.000"), rr.code, rr.err))
			continue
		}
		for _, w := range results {
			if w.Task == rr.task && w.ok() && w.End.Before(rr.start) && w.Version > rr.version {
				bad = append(bad, fmt.Sprintf("GET %s at %s: v%d, but v%d was acknowledged at %s", rr.task,
					rr.start.Format("15:04:05.000"), rr.version, w.Version, w.End.Format("15:04:05.000")))
				break
			}
		}
	}
	return bad
}
