//go:build faults

package faults_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/pg"
)

// rig is what a test's functions run on: a PostgreSQL of its own with the
// schema, the shared Redis under a key prefix of its own, an issuer, and
// the test's own pool on the database to check it.
type rig struct {
	pg     *postgres
	db     *pgxpool.Pool
	rdb    *redis.Client
	prefix string
	token  string
	// env is the functions' environment but for the database: PATH and
	// what is set here; everything else at its default.
	env []string
}

// database is the name of the database the functions use.
const database = "taskfn"

func newRig(t *testing.T) *rig {
	t.Helper()
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s: %v (the functions' cache needs it)", redisURL, err)
	}

	r := &rig{pg: startPostgres(t), rdb: rdb}
	url := r.pg.URL(database)
	ctx := context.Background()
	if err := pg.EnsureDatabase(ctx, url); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Apply(ctx, url); err != nil {
		t.Fatal(err)
	}
	if r.db, err = pgxpool.New(ctx, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.db.Close)

	iss := authtest.NewIssuer(t)
	claims := iss.Claims("faults-writer", auth.RoleMember)
	claims["exp"] = time.Now().Add(time.Hour).Unix() // outlives the run
	r.token = iss.Sign(t, claims)

	r.prefix = "taskfn-faults:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	t.Cleanup(func() { deleteKeys(rdb, r.prefix) })
	r.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"REDIS_URL=" + redisURL, "CACHE_KEY_PREFIX=" + r.prefix,
		"OIDC_ISSUER=" + iss.URL(), "OIDC_AUDIENCE=" + authtest.Audience,
		// Rate limits stay on, as in production, with quotas these few
		// hundred writes a second from one caller never reach.
		"RATE_LIMIT_ENABLED=true", "RATE_LIMIT_KEY_PREFIX=" + r.prefix,
		"RATE_LIMIT_READS=1000000/1s", "RATE_LIMIT_WRITES=1000000/1s",
	}
	return r
}

// deleteKeys removes what a test left in Redis under prefix.
func deleteKeys(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}

// check loads the database after a run and checks it against the
// answers, failing t with every problem; it returns the tally and the
// state for further checks.
func (r *rig) check(t *testing.T, results []result, allowUnanswered bool) (tally, *dbState) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := loadState(ctx, r.db)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "database", st.consistent())
	tl, bad := st.answers(results, allowUnanswered)
	report(t, "answers", bad)
	return tl, st
}

// outage is one disruption as the clients lived it.
type outage struct {
	name          string
	stopped, back time.Time // the stop began; the server accepted connections again
}

// disruption makes an outage: it stops a server and starts it again.
type disruption struct {
	name string
	do   func() (stopped, back time.Time)
}

// driveThrough drives writes from workers and, spread over the run, makes
// each disruption; it stops once minWrites writes were tried and the
// functions had settle to show they serve again after the last one, or
// after limit. The driver's results are the record.
func driveThrough(t *testing.T, d *driver, workers, minWrites int, settle, limit time.Duration, ds []disruption) []outage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.run(ctx, workers); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(limit)
	until := func(cond func() bool) bool {
		for !cond() {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	var outs []outage
	for i, dis := range ds {
		n := minWrites * (i + 1) / (len(ds) + 1)
		if !until(func() bool { return d.tried() >= n }) {
			t.Errorf("only %d writes in %s, %d wanted before %s", d.tried(), limit, n, dis.name)
			return outs
		}
		stopped, back := dis.do()
		outs = append(outs, outage{name: dis.name, stopped: stopped, back: back})
	}
	last := outs[len(outs)-1].back
	if !until(func() bool { return d.tried() >= minWrites && time.Since(last) >= settle }) {
		t.Errorf("only %d writes in %s, %d wanted", d.tried(), limit, minWrites)
	}
	return outs
}

// recovery is how long after back the function serving op first
// acknowledged a write; false if it never did.
func recovery(results []result, op string, back time.Time) (time.Duration, bool) {
	var (
		first time.Duration
		found bool
	)
	for _, r := range results {
		if r.Op != op || !r.ok() || r.End.Before(back) {
			continue
		}
		if d := r.End.Sub(back); !found || d < first {
			first, found = d, true
		}
	}
	return first, found
}

// refusedDuring counts the 503s answered between from and to.
func refusedDuring(results []result, from, to time.Time) int {
	n := 0
	for _, r := range results {
		if r.Code == 503 && !r.End.Before(from) && !r.End.After(to) {
			n++
		}
	}
	return n
}

// recoveries checks that each function acknowledged writes again within
// limit of each outage's end, and describes the outages.
func recoveries(t *testing.T, results []result, outs []outage, limit time.Duration) string {
	t.Helper()
	var desc []string
	for _, o := range outs {
		var (
			parts []string
			worst time.Duration
		)
		for _, fn := range []struct{ op, name string }{{"create", "create-task"}, {"update", "update-task"}} {
			d, ok := recovery(results, fn.op, o.back)
			if !ok {
				t.Errorf("%s: %s acknowledged no write after the server was back", o.name, fn.name)
				continue
			}
			if d > limit {
				t.Errorf("%s: %s acknowledged its first write %s after the server was back, want ≤ %s", o.name, fn.name, d.Round(time.Millisecond), limit)
			}
			worst = max(worst, d)
			parts = append(parts, fmt.Sprintf("%s %s", fn.name, d.Round(time.Millisecond)))
		}
		desc = append(desc, fmt.Sprintf("%s: down %s, %d refused with 503; serving again %s after it was back (%s)",
			o.name, o.back.Sub(o.stopped).Round(time.Millisecond), refusedDuring(results, o.stopped, o.back.Add(worst)),
			worst.Round(time.Millisecond), strings.Join(parts, ", ")))
	}
	return strings.Join(desc, "\n")
}
