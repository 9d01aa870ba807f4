package digestsend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/digest"
	"github.com/taskfn/taskfn/shared/digestsend"
	"github.com/taskfn/taskfn/shared/events"
)

// lockActivity holds an ACCESS EXCLUSIVE lock on task_activity, which
// only the chart reads (its open tasks by status per day), until the
// returned release is called (or the test ends): a tick's chart waits on
// it while the rest of its digest is made.
func (e *tickEnv) lockActivity() (release func()) {
	e.t.Helper()
	ctx := context.Background()
	tx, err := e.db.Primary.Begin(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE task_activity IN ACCESS EXCLUSIVE MODE`); err != nil {
		_ = tx.Rollback(ctx)
		e.t.Fatal(err)
	}
	release = func() {
		if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
			e.t.Error(err)
		}
	}
	e.t.Cleanup(release)
	return release
}

// waitForChart returns once a statement of the test's database waits for
// a lock on task_activity: the tick's chart, blocked by lockActivity.
func (e *tickEnv) waitForChart() {
	e.t.Helper()
	const q = `
SELECT count(*)
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE NOT l.granted
  AND l.relation = 'task_activity'::regclass
  AND a.datname = current_database()`
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := e.db.Primary.QueryRow(context.Background(), q).Scan(&n); err != nil {
			e.t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the tick's chart never waited for task_activity")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// filed is what was filed for subject: digests rows, whether each keeps
// a chart, and the digest events in the outbox with their chart flags.
type filed struct {
	Rows, RowCharts, Events, EventCharts int
}

func (e *tickEnv) filed(subject string) filed {
	e.t.Helper()
	var f filed
	if err := e.db.Primary.QueryRow(context.Background(), `
SELECT count(*), count(chart_png)
FROM digests
WHERE subject = $1`, subject).Scan(&f.Rows, &f.RowCharts); err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range e.outboxDigests()[subject] {
		f.Events++
		var d events.DigestWeeklyData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			e.t.Fatal(err)
		}
		if d.Chart {
			f.EventCharts++
		}
	}
	return f
}

// A chart whose statements outlast their timeout (here: one waits on a
// lock past a shortened timeout) is left out: the digest is filed once,
// its event written, with no chart, and a warning logged; a chart in time
// (the production timeout) is kept.
func TestTickChartTimeout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		slow    bool // task_activity locked for the whole tick
		want    filed
		warning bool
	}{
		{name: "in time", want: filed{Rows: 1, RowCharts: 1, Events: 1, EventCharts: 1}},
		{name: "too slow", slow: true, want: filed{Rows: 1, Events: 1}, warning: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTickEnv(t)
			e.user("cy", "weekly", "UTC", map[string]auth.ProjectRole{"web": auth.ProjectMember})
			e.seed("a task of web", "web", "cy", nil, nil, nil)
			h := e.tick(monday, 5)
			if tt.slow {
				digestsend.SetChartTimeout(h, 200*time.Millisecond)
				defer e.lockActivity()()
			}
			var logs bytes.Buffer
			ctx := zerolog.New(&logs).WithContext(context.Background())
			res, err := h.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if want := (digestsend.Result{Sent: 1, Complete: true}); !cmp.Equal(res, want) {
				t.Errorf("tick %+v, want %+v", res, want)
			}
			if got := e.filed("cy"); !cmp.Equal(got, tt.want) {
				t.Errorf("filed %+v, want %+v", got, tt.want)
			}
			if got := strings.Contains(logs.String(), "digest chart took too long: sent without it"); got != tt.warning {
				t.Errorf("warning logged %v, want %v; logs:\n%s", got, tt.warning, logs.String())
			}
		})
	}
}

// A user who turns the digest off after a tick claimed them, while their
// digest is being made, gets none: Record decides again under the row
// lock, files nothing and writes no event, and no later tick sends one.
func TestTickOffAfterClaim(t *testing.T) {
	t.Parallel()
	e := newTickEnv(t)
	ctx := context.Background()
	e.user("ola", "weekly", "UTC", map[string]auth.ProjectRole{"web": auth.ProjectMember})
	e.seed("a task of web", "web", "ola", nil, nil, nil)
	h := e.tick(monday, 5)
	digestsend.SetChartTimeout(h, time.Minute) // the chart waits on the lock, not past it
	release := e.lockActivity()

	type outcome struct {
		res digestsend.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := h.Run(ctx)
		done <- outcome{res, err}
	}()
	e.waitForChart() // claimed, and composing
	if err := e.store.Put(ctx, "ola", digest.Preferences{Digest: digest.Off, TimeZone: "UTC"}, monday); err != nil {
		t.Fatal(err)
	}
	release()
	got := <-done
	if got.err != nil {
		t.Fatal(got.err)
	}
	if want := (digestsend.Result{Skipped: 1, Complete: true}); !cmp.Equal(got.res, want) {
		t.Errorf("tick %+v, want %+v", got.res, want)
	}
	if f := e.filed("ola"); !cmp.Equal(f, filed{}) {
		t.Errorf("filed %+v, want nothing", f)
	}
	p, err := e.store.Get(ctx, "ola")
	if err != nil {
		t.Fatal(err)
	}
	if want := (digest.Preferences{Digest: digest.Off, TimeZone: "UTC"}); !cmp.Equal(p, want) {
		t.Errorf("preferences %+v, want %+v", p, want)
	}
	// Nor later that week, nor the next.
	for _, now := range []time.Time{monday.Add(time.Hour), monday.Add(7 * 24 * time.Hour)} {
		if res, err := e.tick(now, 5).Run(ctx); err != nil || res.Sent != 0 {
			t.Fatalf("tick at %s: %+v %v, want nothing sent", now, res, err)
		}
	}
	if f := e.filed("ola"); !cmp.Equal(f, filed{}) {
		t.Errorf("after later ticks: filed %+v, want nothing", f)
	}
}
