package loadgen_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/migrations"
	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/auth/authtest"
	"github.com/taskfn/taskfn/shared/config"
	"github.com/taskfn/taskfn/shared/devkafka"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/httpx"
	"github.com/taskfn/taskfn/shared/lifecycle"
	"github.com/taskfn/taskfn/shared/loadgen"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
	"github.com/taskfn/taskfn/shared/task"
	"github.com/taskfn/taskfn/shared/taskapi"
)

// benchConfig is BenchmarkLoad's own configuration. The functions and the
// ceilings also read the usual variables (DATABASE_MAX_CONNS,
// REDIS_POOL_SIZE, ...), so both run with the same pool settings.
type benchConfig struct {
	// DatabaseURL is the benchmark's own database, kept between runs:
	// seeding a million tasks takes a while, reusing them seconds.
	DatabaseURL string `envconfig:"BENCH_DATABASE_URL" default:"postgres://postgres@127.0.0.1:5432/taskfn_bench?sslmode=disable"`
	RedisURL    string `envconfig:"BENCH_REDIS_URL" default:"redis://127.0.0.1:6379/0"`
	Rows        int    `envconfig:"BENCH_ROWS" default:"1000000"`
	// Comments is how many comments the table holds: the hot tasks
	// hotComments each, the rest spread over the other tasks.
	Comments    int `envconfig:"BENCH_COMMENTS" default:"10000000"`
	Concurrency int `envconfig:"BENCH_CONCURRENCY" default:"16"`
	// Each scenario is measured for Duration in all, split into Rounds;
	// every round runs every scenario once, ceilings next to ours, so a
	// neighbour's burst on a shared machine hits both sides of a ratio.
	// Warmup precedes each scenario in each round.
	Rounds   int           `envconfig:"BENCH_ROUNDS" default:"3"`
	Warmup   time.Duration `envconfig:"BENCH_WARMUP" default:"1s"`
	Duration time.Duration `envconfig:"BENCH_DURATION" default:"5s"`
	// Strict fails the benchmark when a target is missed; by default the
	// report says FAIL and the run succeeds, as figures vary by machine.
	Strict bool `envconfig:"BENCH_STRICT" default:"false"`
	// Scenarios selects the scenarios to run by name, to look at one
	// closely; a target whose scenarios did not run is not checked.
	Scenarios *regexp.Regexp `envconfig:"BENCH_SCENARIOS" default:"."`
	// Kafka gives the functions a Kafka-protocol broker (an embedded
	// kfake, a process of its own), so the writes publish their events
	// after commit as deployed. Off, they leave them in the outbox for
	// relay-outbox, which the benchmark does not run.
	Kafka bool `envconfig:"BENCH_KAFKA" default:"false"`
}

// benchQuota is every class's rate limit in the functions: on, but out of
// reach.
const benchQuota = "1000000/1s"

// Subjects of the benchmark's tokens. The writer's tasks are deleted after
// each run, so the table stays as seeded.
const (
	writer = "bench-writer"
	// member is assigned about 750 seeded tasks, maintainer of team-0 and
	// member of team-1 ... team-19 through the members table: a list of
	// 20 projects, and every GET of theirs a membership lookup.
	member = "user-7"
	// teammate is member of team-7 through its token's Keycloak group.
	teammate = "bench-teammate"
)

// Seeded projects: team-0 ... team-999, about 1000 tasks each.
const (
	benchProjects    = 1000
	memberProjects   = 20
	teammatesProject = "team-7"
)

var statuses = []string{"todo", "in_progress", "blocked", "done", "cancelled"}

// BenchmarkLoad measures the real get-task, list-tasks and create-task
// binaries over loopback HTTP, every request with a verified JWT, against a
// table of BENCH_ROWS tasks, next to four ceilings measured in the same
// run with the same concurrency: a bare httprouter handler returning the
// same bytes, one go-redis GET per request, one pgx point select per
// request, and one store List per request, encoded as the route encodes
// it. It prints a report (see BENCHMARKS.md) and reports the figures
// as benchmark metrics for benchstat. One iteration is the whole run,
// whatever b.N; make bench runs it once.
func BenchmarkLoad(b *testing.B) {
	var cfg benchConfig
	if err := config.Load(&cfg); err != nil {
		b.Fatal(err)
	}
	var fn taskapi.Config // what the functions will read, defaults included
	if err := config.Load(&fn); err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	root, err := moduleRoot()
	if err != nil {
		b.Fatal(err)
	}

	seedStart := time.Now()
	db, seeded, err := seed(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	seedTook := time.Since(seedStart)
	ids, err := sampleIDs(ctx, db, 300_100, cfg.Rows)
	if err != nil {
		b.Fatal(err)
	}
	// Each GET scenario draws from ids of its own, so none reads pages
	// another one just brought into memory.
	// The hot ids are tasks of the member's projects, which the cached GET
	// reads as that member: every request checks its membership.
	hot, err := memberIDs(ctx, db, 100)
	if err != nil {
		b.Fatal(err)
	}
	rest := ids[100:]
	third := len(rest) / 3
	pgxIDs, uncachedIDs, missIDs := rest[:third], rest[third:2*third], rest[2*third:]

	bin := b.TempDir()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+"/", "./functions/get-task", "./functions/list-tasks", "./functions/create-task",
		"./functions/get-project", "./functions/list-projects", "./functions/put-project-member",
		"./functions/update-project", "./functions/list-project-members", "./functions/list-task-activity",
		"./functions/update-task", "./functions/update-tasks", "./functions/list-comments", "./functions/list-relations",
		"./functions/list-trash", "./functions/delete-task", "./functions/restore-task", "./functions/ingest-events",
		"./functions/get-preferences", "./functions/put-preferences", "./functions/list-fields")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("building the functions: %v", err)
	}

	iss := authtest.NewIssuer(b)
	token := func(sub string, role auth.Role) string {
		c := iss.Claims(sub, role)
		c["exp"] = time.Now().Add(time.Hour).Unix() // outlives the run
		return iss.Sign(b, c)
	}
	// One token per worker, as many clients would send: each is verified
	// once, then found in the verified-token cache.
	readers, members, writers := make([]string, cfg.Concurrency), make([]string, cfg.Concurrency), make([]string, cfg.Concurrency)
	teammates := make([]string, cfg.Concurrency)
	for w := range cfg.Concurrency {
		readers[w] = token(fmt.Sprintf("bench-reader-%d", w), auth.RoleAdmin)
		members[w] = token(member, auth.RoleMember)
		writers[w] = token(writer, auth.RoleMember)
		c := iss.Claims(teammate, auth.RoleMember)
		c["exp"] = time.Now().Add(time.Hour).Unix()
		c["groups"] = []string{"/projects/" + teammatesProject + "/member"}
		teammates[w] = iss.Sign(b, c)
	}

	// A key prefix of this run's own: no entry of an earlier run is hit.
	prefix := "taskfn-bench:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	rdb := redis.NewClient(mustRedisOptions(b, cfg.RedisURL))
	defer rdb.Close()
	defer deleteKeys(rdb, prefix)
	defer deleteKeys(rdb, "rate:"+prefix) // redis_rate puts its "rate:" first
	common := []string{
		"DATABASE_URL=" + cfg.DatabaseURL, "REDIS_URL=" + cfg.RedisURL, "CACHE_KEY_PREFIX=" + prefix,
		"OIDC_ISSUER=" + iss.URL(), "OIDC_AUDIENCE=" + authtest.Audience,
		// Rate limits on, as deployed, so their cost is measured; the quotas
		// are raised far above what the clients send (hundreds of requests
		// a second each, which production quotas would refuse), so none is
		// refused. RATE_LIMIT_LEASE passes through: 0 measures a Redis call
		// per request.
		"RATE_LIMIT_ENABLED=true", "RATE_LIMIT_KEY_PREFIX=" + prefix,
		"RATE_LIMIT_READS=" + benchQuota, "RATE_LIMIT_WRITES=" + benchQuota, "RATE_LIMIT_REPORTS=" + benchQuota,
	}
	logs := b.TempDir()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	kafkaPid := -1
	if cfg.Kafka {
		port, err := freePort()
		if err != nil {
			b.Fatal(err)
		}
		broker := startProc(b, logs, "kafka", self, []string{ceilingEnvName + "=kafka", kafkaPortEnv + "=" + strconv.Itoa(port)}, "/readyz")
		kafkaPid = broker.pid
		common = append(common, "KAFKA_BROKERS=127.0.0.1:"+strconv.Itoa(port))
	}
	getCached := startProc(b, logs, "get-task", filepath.Join(bin, "get-task"), common, "/readyz")
	getUncached := startProc(b, logs, "get-task-uncached", filepath.Join(bin, "get-task"), append(common, "CACHE_ENABLED=false"), "/readyz")
	list := startProc(b, logs, "list-tasks", filepath.Join(bin, "list-tasks"), common, "/readyz")
	create := startProc(b, logs, "create-task", filepath.Join(bin, "create-task"), common, "/readyz")
	getProject := startProc(b, logs, "get-project", filepath.Join(bin, "get-project"), common, "/readyz")
	listProjects := startProc(b, logs, "list-projects", filepath.Join(bin, "list-projects"), common, "/readyz")
	putMember := startProc(b, logs, "put-project-member", filepath.Join(bin, "put-project-member"), common, "/readyz")
	updateProject := startProc(b, logs, "update-project", filepath.Join(bin, "update-project"), common, "/readyz")
	listMembers := startProc(b, logs, "list-project-members", filepath.Join(bin, "list-project-members"), common, "/readyz")
	history := startProc(b, logs, "list-task-activity", filepath.Join(bin, "list-task-activity"), common, "/readyz")
	update := startProc(b, logs, "update-task", filepath.Join(bin, "update-task"), common, "/readyz")
	bulkUpdate := startProc(b, logs, "update-tasks", filepath.Join(bin, "update-tasks"), common, "/readyz")
	comments := startProc(b, logs, "list-comments", filepath.Join(bin, "list-comments"), common, "/readyz")
	relations := startProc(b, logs, "list-relations", filepath.Join(bin, "list-relations"), common, "/readyz")
	listTrash := startProc(b, logs, "list-trash", filepath.Join(bin, "list-trash"), common, "/readyz")
	trashTask := startProc(b, logs, "delete-task", filepath.Join(bin, "delete-task"), common, "/readyz")
	restore := startProc(b, logs, "restore-task", filepath.Join(bin, "restore-task"), common, "/readyz")
	ingestEvents := startProc(b, logs, "ingest-events", filepath.Join(bin, "ingest-events"), common, "/readyz")
	getPrefs := startProc(b, logs, "get-preferences", filepath.Join(bin, "get-preferences"), common, "/readyz")
	putPrefs := startProc(b, logs, "put-preferences", filepath.Join(bin, "put-preferences"), common, "/readyz")
	listFields := startProc(b, logs, "list-fields", filepath.Join(bin, "list-fields"), common, "/readyz")
	if err := seedFieldDefinitions(ctx, db); err != nil {
		b.Fatal(err)
	}
	trashSeeded, err := seedTrash(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	if err := seedRelations(ctx, db, hot); err != nil {
		b.Fatal(err)
	}
	commentsSeeded, err := seedComments(ctx, db, hot, cfg.Comments)
	if err != nil {
		b.Fatal(err)
	}
	// Each writer changes tasks of its own, so no two wait on one row:
	// one for the single PATCH, bulkSize for the bulk one.
	// (and one more each for the trash and restore cycle, and one for the
	// update scenarios)
	writerTasks, err := writerIDs(ctx, db, cfg.Concurrency*(3+bulkSize))
	if err != nil {
		b.Fatal(err)
	}
	if err := seedActivity(ctx, db, hot); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if _, err := db.Exec(context.Background(), "DELETE FROM tasks WHERE owner_id = $1", writer); err != nil {
			b.Errorf("removing the created tasks: %v", err)
		}
		if _, err := db.Exec(context.Background(), "DELETE FROM command_receipts WHERE producer = $1", writer); err != nil {
			b.Errorf("removing the commands' receipts: %v", err)
		}
	}()

	// The bytes a cached GET answers, for the ceilings to answer too.
	bodies := map[string][]byte{}
	var header http.Header
	for _, id := range hot {
		body, h, err := fetch(ctx, getUncached.url+"/tasks/"+id, readers[0])
		if err != nil {
			b.Fatal(err)
		}
		bodies[id], header = body, h
		if err := rdb.Set(ctx, prefix+"ceiling:"+id, body, time.Hour).Err(); err != nil {
			b.Fatal(err)
		}
	}
	for _, k := range []string{"Date", "Content-Length", "X-Request-Id"} {
		header.Del(k)
	}
	headerJSON, _ := json.Marshal(header)
	bodyFile := filepath.Join(logs, "body.json")
	if err := os.WriteFile(bodyFile, bodies[hot[0]], 0o600); err != nil {
		b.Fatal(err)
	}
	ceilingEnv := append(common, "LOADGEN_HEADER="+string(headerJSON), "LOADGEN_BODY_FILE="+bodyFile, "LOADGEN_REDIS_PREFIX="+prefix+"ceiling:")
	static := startProc(b, logs, "ceiling-static", self, append(ceilingEnv, ceilingEnvName+"=static"), "/tasks/"+hot[0])
	bareRedis := startProc(b, logs, "ceiling-redis", self, append(ceilingEnv, ceilingEnvName+"=redis"), "/tasks/"+hot[0])
	barePgx := startProc(b, logs, "ceiling-pgx", self, append(ceilingEnv, ceilingEnvName+"=pgx"), "/tasks/"+hot[0])
	barePgxList := startProc(b, logs, "ceiling-pgx-list", self, append(ceilingEnv, ceilingEnvName+"=pgx-list"), "/tasks?status=todo")
	barePgxInsert := startProc(b, logs, "ceiling-pgx-insert", self, append(ceilingEnv, ceilingEnvName+"=pgx-insert"), "/readyz")
	verifyInsert := startProc(b, logs, "ceiling-verify-insert", self, append(ceilingEnv, ceilingEnvName+"=verify-insert"), "/readyz")
	barePgxUpdate := startProc(b, logs, "ceiling-pgx-update", self, append(ceilingEnv, ceilingEnvName+"=pgx-update"), "/readyz")

	rounds := max(cfg.Rounds, 1)
	o := loadgen.Options{Concurrency: cfg.Concurrency, Warmup: cfg.Warmup, Duration: cfg.Duration / time.Duration(rounds)}
	client := loadgen.NewClient(cfg.Concurrency, 10*time.Second)
	defer client.Close()
	must := func(req loadgen.Request, err error) loadgen.Request {
		if err != nil {
			b.Fatal(err)
		}
		return req
	}
	bearer := func(token string) http.Header {
		if token == "" {
			return nil
		}
		return http.Header{"Authorization": {"Bearer " + token}}
	}
	get := func(base proc, ids []string, tokens []string) loadgen.Step {
		// One request per worker (its token), given each id's path.
		reqs := make([]loadgen.Request, cfg.Concurrency)
		for w := range reqs {
			var token string
			if tokens != nil {
				token = tokens[w]
			}
			reqs[w] = must(loadgen.NewRequest(http.MethodGet, base.url+"/tasks/"+ids[0], bearer(token), nil))
		}
		var next atomic.Int64
		return loadgen.HTTP(client, http.StatusOK, func(w int) loadgen.Request {
			return reqs[w].WithPath("/tasks/" + ids[int(next.Add(1)-1)%len(ids)])
		})
	}
	// Lists and creates repeat a few requests per worker: built once.
	listStep := func(base proc, tokens []string, extra ...string) loadgen.Step {
		reqs := make([][]loadgen.Request, len(tokens))
		for w, token := range tokens {
			for _, st := range statuses {
				reqs[w] = append(reqs[w], must(loadgen.NewRequest(http.MethodGet, base.url+"/tasks?status="+st+"&sort=-created_at&limit=50"+strings.Join(extra, ""), bearer(token), nil)))
			}
		}
		var next atomic.Int64
		return loadgen.HTTP(client, http.StatusOK, func(w int) loadgen.Request {
			return reqs[w][int(next.Add(1)-1)%len(statuses)]
		})
	}
	// Creates spread over the statuses like the seeded rows: all of them
	// new "todo" tasks would make the newest rows one status, and the list
	// scenarios of the next rounds would measure that skew, not the table.
	// The insert ceilings get the same requests, token included (the bare
	// one ignores it), so they differ from create only by what they skip;
	// their tasks are the writer's too, deleted with create's.
	createsTo := func(base proc) loadgen.Step {
		creates := make([][]loadgen.Request, len(writers))
		for w, token := range writers {
			h := bearer(token)
			h.Set("Content-Type", "application/json")
			for _, st := range statuses {
				body := []byte(`{"title":"Benchmark task","description":"made by make bench","status":"` + st + `","priority":"high","labels":["bench"]}`)
				creates[w] = append(creates[w], must(loadgen.NewRequest(http.MethodPost, base.url+"/tasks", h, body)))
			}
		}
		var created atomic.Int64
		return loadgen.HTTP(client, http.StatusCreated, func(w int) loadgen.Request {
			return creates[w][int(created.Add(1)-1)%len(statuses)]
		})
	}
	// The same creates as commands to ingest-events, structured mode: each
	// a new CloudEvent id (so each has its effect and its receipt), built
	// per request, which costs the load generator a few microseconds.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var commanded atomic.Int64
	ingestStep := loadgen.HTTP(client, http.StatusCreated, func(w int) loadgen.Request {
		n := commanded.Add(1)
		h := bearer(writers[w])
		h.Set("Content-Type", "application/cloudevents+json")
		body := []byte(`{"specversion":"1.0","id":"bench-` + run + `-` + strconv.FormatInt(n, 10) + `","source":"/bench","type":"dev.taskfn.command.task.create.v1",` +
			`"datacontenttype":"application/json","data":{"title":"Benchmark task","description":"made by make bench","status":"` + statuses[int(n)%len(statuses)] + `","priority":"high","labels":["bench"]}}`)
		return must(loadgen.NewRequest(http.MethodPost, ingestEvents.url+"/events", h, body))
	})

	// One project's list, as a member of it by Keycloak group; filter
	// is added to the query (a custom field filter, or nothing).
	projectList := func(base proc, tokens []string, filter string) loadgen.Step {
		reqs := make([][]loadgen.Request, len(tokens))
		for w, token := range tokens {
			for _, st := range statuses {
				reqs[w] = append(reqs[w], must(loadgen.NewRequest(http.MethodGet,
					base.url+"/tasks?project="+teammatesProject+"&status="+st+"&sort=-created_at&limit=50"+filter, bearer(token), nil)))
			}
		}
		var next atomic.Int64
		return loadgen.HTTP(client, http.StatusOK, func(w int) loadgen.Request {
			return reqs[w][int(next.Add(1)-1)%len(statuses)]
		})
	}
	// The project routes: reads of the member's projects, and a
	// maintainer setting a member's role (the same one: the route's
	// locking and checks, and no write, as most PUTs of a role are).
	fixed := func(want int, method, url string, tokens []string, body []byte) loadgen.Step {
		reqs := make([]loadgen.Request, len(tokens))
		for w, token := range tokens {
			h := bearer(token)
			if body != nil {
				h.Set("Content-Type", "application/json")
			}
			reqs[w] = must(loadgen.NewRequest(method, url, h, body))
		}
		return loadgen.HTTP(client, want, func(w int) loadgen.Request { return reqs[w] })
	}

	// A page of a task's sub-list (its history, its comments), over the
	// hot tasks, as the member.
	pageStep := func(base proc, ids []string, tokens []string, suffix string) loadgen.Step {
		reqs := make([]loadgen.Request, len(tokens))
		for w, token := range tokens {
			reqs[w] = must(loadgen.NewRequest(http.MethodGet, base.url+"/tasks/"+ids[0]+suffix, bearer(token), nil))
		}
		var next atomic.Int64
		return loadgen.HTTP(client, http.StatusOK, func(w int) loadgen.Request {
			return reqs[w].WithPath("/tasks/" + ids[int(next.Add(1)-1)%len(ids)] + suffix)
		})
	}
	activityStep := func(base proc, ids []string, tokens []string) loadgen.Step {
		return pageStep(base, ids, tokens, "/activity?limit=50")
	}

	// PATCH toggles each writer's task between two statuses, so every
	// request writes (a no-op writes nothing); the bulk PATCH does the same
	// to the writer's bulkSize tasks at once.
	toggle := func(base proc, path func(w int) string, body func(w int, st string) []byte) loadgen.Step {
		reqs := make([][2]loadgen.Request, len(writers))
		for w, token := range writers {
			h := bearer(token)
			h.Set("Content-Type", "application/json")
			for i, st := range []string{"in_progress", "todo"} {
				reqs[w][i] = must(loadgen.NewRequest(http.MethodPatch, base.url+path(w), h, body(w, st)))
			}
		}
		turns := make([]atomic.Int64, len(writers))
		return loadgen.HTTP(client, http.StatusOK, func(w int) loadgen.Request {
			return reqs[w][turns[w].Add(1)%2]
		})
	}
	single := toggle(update, func(w int) string { return "/tasks/" + writerTasks[w] }, func(_ int, st string) []byte {
		return []byte(`{"status":"` + st + `"}`)
	})
	bulkStep := toggle(bulkUpdate, func(int) string { return "/tasks" }, func(w int, st string) []byte {
		ids := writerTasks[cfg.Concurrency+w*bulkSize : cfg.Concurrency+(w+1)*bulkSize]
		return []byte(`{"ids":["` + strings.Join(ids, `","`) + `"],"patch":{"status":"` + st + `"}}`)
	})

	// update and its ceiling: every client toggles the status of a task of
	// its own with If-Match, the ETag of its last answer, as a client that
	// guards against lost updates does. The two scenarios share the tasks,
	// so the versions are the tasks', kept across scenarios and rounds.
	updateTasks := writerTasks[cfg.Concurrency*(2+bulkSize):]
	etags, turns := make([]string, cfg.Concurrency), make([]int, cfg.Concurrency)
	for w := range etags {
		etags[w] = httpx.ETag(1) // as writerIDs made them
	}
	updateHeaders := make([]http.Header, len(writers))
	for w, token := range writers {
		updateHeaders[w] = bearer(token)
		updateHeaders[w].Set("Content-Type", "application/json")
	}
	ifMatchStep := func(base proc) loadgen.Step {
		bodies := [2][]byte{[]byte(`{"status":"in_progress"}`), []byte(`{"status":"todo"}`)}
		return func(ctx context.Context, w int) error {
			// Built per request, as the If-Match changes: a few µs of the
			// load generator's. A worker's calls never overlap, so its
			// header, ETag and turn are its own.
			h := updateHeaders[w]
			h.Set("If-Match", etags[w])
			req, err := loadgen.NewRequest(http.MethodPatch, base.url+"/tasks/"+updateTasks[w], h, bodies[turns[w]%2])
			if err != nil {
				return err
			}
			status, etag, err := client.DoHeader(ctx, w, req, "ETag")
			if err == nil && (status != http.StatusOK || etag == "") {
				err = fmt.Errorf("PATCH %s: status %d, ETag %q, want 200 and one", base.url+"/tasks/"+updateTasks[w], status, etag)
			}
			if err != nil {
				// The version is unknown now (a 412, an answer lost): read
				// it again, so that one failure is not every next one too.
				var v int64
				if db.QueryRow(context.Background(), "SELECT version FROM tasks WHERE id = $1", updateTasks[w]).Scan(&v) == nil {
					etags[w] = httpx.ETag(v)
				}
				return err
			}
			etags[w] = etag
			turns[w]++
			return nil
		}
	}

	// The trash and back: each step trashes one of the writer's tasks
	// (delete-task) and restores it (restore-task), two writes.
	cycleTasks := writerTasks[cfg.Concurrency*(1+bulkSize):]
	cycle := make([][2]loadgen.Request, len(writers))
	for w, token := range writers {
		cycle[w][0] = must(loadgen.NewRequest(http.MethodDelete, trashTask.url+"/tasks/"+cycleTasks[w], bearer(token), nil))
		cycle[w][1] = must(loadgen.NewRequest(http.MethodPost, restore.url+"/tasks/"+cycleTasks[w]+"/restore", bearer(token), nil))
	}
	trashThenRestore, restoreStep := loadgen.HTTP(client, http.StatusNoContent, func(w int) loadgen.Request { return cycle[w][0] }),
		loadgen.HTTP(client, http.StatusOK, func(w int) loadgen.Request { return cycle[w][1] })
	cycleStep := func(ctx context.Context, w int) error {
		if err := trashThenRestore(ctx, w); err != nil {
			return err
		}
		return restoreStep(ctx, w)
	}

	scenarios := []struct {
		name   string
		server proc
		step   loadgen.Step
		// clients, if set, replaces BENCH_CONCURRENCY: the PATCH pair is
		// a latency comparison, which 16 clients of 100-task changes turn
		// into one of queues on a saturated machine.
		clients int
	}{
		{"bare httprouter", static, get(static, hot, nil), 0},
		{"bare go-redis GET", bareRedis, get(bareRedis, hot, nil), 0},
		{"GET, cached", getCached, get(getCached, hot, members), 0},
		{"bare pgx select", barePgx, get(barePgx, pgxIDs, nil), 0},
		{"GET, uncached", getUncached, get(getUncached, uncachedIDs, readers), 0},
		{"GET, cache miss", getCached, get(getCached, missIDs, readers), 0},
		{"bare pgx list", barePgxList, listStep(barePgxList, make([]string, cfg.Concurrency)), 0},
		{"list, status filter", list, listStep(list, readers), 0},
		// The member's page beside the store's List of it, in the
		// member's scope: the same 21 project branches and the assigned.
		{"bare pgx list, as a member", barePgxList, listStep(barePgxList, make([]string, cfg.Concurrency), "&as=member"), 0},
		{"list, as a member", list, listStep(list, members), 0},
		// The project's page beside its own ceiling, the store's List of
		// that page: its tasks carry field values, so both read the
		// project's definitions to show them, which the all-projects bare
		// list above does not.
		{"bare pgx list, one project", barePgxList, projectList(barePgxList, make([]string, cfg.Concurrency), ""), 0},
		{"list, one project", list, projectList(list, teammates, ""), 0},
		// The same page filtered by a custom field, beside its ceiling:
		// the store's List of that page, resolved as the route resolves it.
		{"bare pgx list, custom field", barePgxList, projectList(barePgxList, make([]string, cfg.Concurrency), benchFieldFilter), 0},
		{"list, custom field", list, projectList(list, teammates, benchFieldFilter), 0},
		{"GET /projects/{key}", getProject, fixed(http.StatusOK, http.MethodGet, getProject.url+"/projects/team-3", members, nil), 0},
		{"GET /projects", listProjects, fixed(http.StatusOK, http.MethodGet, listProjects.url+"/projects?limit=50", members, nil), 0},
		{"PUT member", putMember, fixed(http.StatusOK, http.MethodPut, putMember.url+"/projects/team-0/members/"+teammate, members, []byte(`{"role":"member"}`)), 0},
		{"PATCH project", updateProject, fixed(http.StatusOK, http.MethodPatch, updateProject.url+"/projects/team-0", members, []byte(`{"name":"Team 0"}`)), 0},
		{"GET activity", history, activityStep(history, hot, members), 0},
		{"GET relations", relations, pageStep(relations, hot, members, "/relations"), 0},
		{"GET comments", comments, pageStep(comments, hot, members, "/comments?limit=50"), 0},
		// A project's field definitions, read with every task form: the
		// role lookup and one index scan of benchFields rows.
		{"GET fields", listFields, fixed(http.StatusOK, http.MethodGet, listFields.url+"/projects/team-3/fields", members, nil), 0},
		{"GET members", listMembers, fixed(http.StatusOK, http.MethodGet, listMembers.url+"/projects/team-0/members?limit=50", members, nil), 0},
		{"GET /trash", listTrash, fixed(http.StatusOK, http.MethodGet, listTrash.url+"/trash?limit=50", members, nil), 0},
		// The member's own preferences: a primary-key read; a PUT that
		// locks its row, reschedules the digest and writes it (each time:
		// updated_at).
		{"GET /me/preferences", getPrefs, fixed(http.StatusOK, http.MethodGet, getPrefs.url+"/me/preferences", members, nil), 0},
		{"PUT /me/preferences", putPrefs, fixed(http.StatusOK, http.MethodPut, putPrefs.url+"/me/preferences", members,
			[]byte(`{"digest":"weekly","time_zone":"Europe/Berlin"}`)), 0},
		{"PATCH", update, single, 1},
		{"bulk PATCH of 100", bulkUpdate, bulkStep, 1},
		{"trash + restore", restore, cycleStep, 1},
		// create beside its ceilings: one INSERT … RETURNING, and the same
		// after the functions' token check.
		{"bare pgx insert", barePgxInsert, createsTo(barePgxInsert), 0},
		{"minimal verify + insert", verifyInsert, createsTo(verifyInsert), 0},
		{"create", create, createsTo(create), 0},
		// PATCH with If-Match at full concurrency, beside one UPDATE …
		// RETURNING of the same change.
		{"bare pgx update", barePgxUpdate, ifMatchStep(barePgxUpdate), 0},
		{"update", update, ifMatchStep(update), 0},
		{"ingest, structured", ingestEvents, ingestStep, 0},
	}
	load := loadavg()
	b.ResetTimer()
	res := map[string]*loadgen.Result{}
	perRound := map[string][]loadgen.Result{}
	for _, sc := range scenarios {
		res[sc.name] = &loadgen.Result{Name: sc.name, Latency: loadgen.NewHistogram()}
	}
	generator := os.Getpid()
	for range rounds {
		for _, sc := range scenarios {
			if !cfg.Scenarios.MatchString(sc.name) {
				continue
			}
			o := o
			if sc.clients > 0 {
				o.Concurrency = sc.clients
			}
			groups := []loadgen.CPUGroup{
				{Name: "server", Match: func(pid int, _ string) bool { return pid == sc.server.pid }},
				{Name: "postgres", Match: func(_ int, comm string) bool { return comm == "postgres" }},
				{Name: "redis", Match: func(_ int, comm string) bool { return comm == "redis-server" }},
				{Name: "load generator", Match: func(pid int, _ string) bool { return pid == generator }},
				{Name: "kafka", Match: func(pid int, _ string) bool { return pid == kafkaPid }},
			}
			o.CPU = func() loadgen.CPUTime { return loadgen.ReadCPU(groups) }
			r := loadgen.Run(ctx, sc.name, o, sc.step)
			res[sc.name].Merge(r)
			perRound[sc.name] = append(perRound[sc.name], r)
		}
	}
	b.StopTimer()
	load += " before, " + loadavg() + " after"
	rStatic, rRedis, rCached := *res["bare httprouter"], *res["bare go-redis GET"], *res["GET, cached"]
	rPgx, rUncached, rMiss := *res["bare pgx select"], *res["GET, uncached"], *res["GET, cache miss"]
	rPgxList, rList, rListMember, rCreate := *res["bare pgx list"], *res["list, status filter"], *res["list, as a member"], *res["create"]
	rListProject, rGetProject, rListProjects, rPutMember := *res["list, one project"], *res["GET /projects/{key}"], *res["GET /projects"], *res["PUT member"]
	rPatchProject, rListMembers, rActivity := *res["PATCH project"], *res["GET members"], *res["GET activity"]
	rPatch, rBulk, rComments, rRelations := *res["PATCH"], *res["bulk PATCH of 100"], *res["GET comments"], *res["GET relations"]
	rTrash, rCycle, rIngest := *res["GET /trash"], *res["trash + restore"], *res["ingest, structured"]
	rGetPrefs, rPutPrefs := *res["GET /me/preferences"], *res["PUT /me/preferences"]
	rPgxInsert, rVerifyInsert := *res["bare pgx insert"], *res["minimal verify + insert"]
	rPgxUpdate, rUpdate := *res["bare pgx update"], *res["update"]
	rFields := *res["GET fields"]
	roundRatios := func(ours, ceiling string) string {
		var rs []string
		for i := range perRound[ours] {
			rs = append(rs, fmt.Sprintf("%.2f", loadgen.Ratio(perRound[ours][i], perRound[ceiling][i])))
		}
		return "rounds " + strings.Join(rs, " ")
	}
	roundP99s := func(name string) string {
		var rs []string
		for _, r := range perRound[name] {
			rs = append(rs, loadgen.Ms(r.Latency.Quantile(0.99)))
		}
		return "rounds " + strings.Join(rs, " ")
	}

	r := loadgen.Report{
		Title:     "taskfn load benchmark, " + time.Now().UTC().Format("2006-01-02 15:04 MST"),
		CPUGroups: []string{"server", "postgres", "redis", "load generator", loadgen.OtherCPU},
	}
	if cfg.Kafka {
		r.CPUGroups = []string{"server", "postgres", "redis", "kafka", "load generator", loadgen.OtherCPU}
	}
	kafkaNote := "none: the writes leave their events in the outbox (BENCH_KAFKA=true publishes them)"
	if cfg.Kafka {
		kafkaNote = "an embedded kfake broker, a process of its own (BENCH_KAFKA): the writes publish their events after commit, as deployed"
	}
	r.About = append(machine(ctx, db, rdb), [2]string{"run", fmt.Sprintf(
		"%d clients, keep-alive; %s measured per scenario in %d rounds of all scenarios, each after a %s warm-up; %d tasks (%s)",
		cfg.Concurrency, cfg.Duration, rounds, cfg.Warmup, cfg.Rows, seeded+" in "+seedTook.Round(100*time.Millisecond).String())},
		[2]string{"load", "load average " + load},
		[2]string{"pools", fmt.Sprintf("DATABASE_MAX_CONNS=%d DATABASE_QUERY_EXEC_MODE=%s REDIS_POOL_SIZE=%d, functions and ceilings alike",
			fn.DB.MaxConns, fn.DB.QueryExecMode, fn.Cache.PoolSize)},
		[2]string{"kafka", kafkaNote},
		[2]string{"limits", fmt.Sprintf("rate limits on in the functions, %s per caller and class (never reached), RATE_LIMIT_LEASE=%s; the ceilings have none",
			benchQuota, fn.RateLimit.Lease)},
		[2]string{"requests", "GET /tasks/{id}: 100 hot ids of the member's 20 projects, read as that member (cached), or ids drawn from a random 300k read as admins (uncached, miss, pgx); " +
			"list: GET /tasks?status=<each in turn>&sort=-created_at&limit=50, as an admin, as the member of 20 projects (API roles) and, with project=team-7, as a member of that project by Keycloak group; " +
			fmt.Sprintf("%d tasks over %d projects", cfg.Rows, benchProjects)},
	)
	ran := func(names ...string) bool {
		for _, n := range names {
			if len(perRound[n]) == 0 {
				return false
			}
		}
		return true
	}
	add := func(res loadgen.Result, ceiling *loadgen.Result) {
		if !ran(res.Name) {
			return
		}
		if ceiling != nil && !ran(ceiling.Name) {
			ceiling = nil
		}
		r.Add(res, ceiling)
	}
	add(rStatic, nil)
	add(rRedis, nil)
	add(rPgx, nil)
	add(rPgxList, nil)
	add(rCached, &rRedis)
	add(rUncached, &rPgx)
	add(rMiss, &rPgx)
	add(rList, &rPgxList)
	rPgxListMember := *res["bare pgx list, as a member"]
	add(rPgxListMember, nil)
	add(rListMember, &rPgxListMember)
	rPgxListProject := *res["bare pgx list, one project"]
	add(rPgxListProject, nil)
	add(rListProject, &rPgxListProject)
	rListField, rPgxListField := *res["list, custom field"], *res["bare pgx list, custom field"]
	add(rPgxListField, nil)
	add(rListField, &rPgxListField)
	add(rGetProject, &rStatic)
	add(rListProjects, &rStatic)
	add(rPutMember, &rStatic)
	add(rPatchProject, &rStatic)
	add(rListMembers, &rStatic)
	add(rFields, &rStatic)
	add(rActivity, &rPgx)
	add(rComments, &rPgx)
	add(rRelations, &rPgx)
	add(rTrash, &rPgxList)
	add(rGetPrefs, &rStatic)
	add(rPutPrefs, &rStatic)
	add(rPatch, &rStatic)
	add(rBulk, &rPatch)
	add(rCycle, &rPatch)
	add(rPgxInsert, nil)
	add(rVerifyInsert, &rPgxInsert)
	add(rCreate, &rPgxInsert)
	add(rIngest, &rCreate)
	add(rPgxUpdate, nil)
	add(rUpdate, &rPgxUpdate)
	cachedRatio, uncachedRatio := loadgen.Ratio(rCached, rRedis), loadgen.Ratio(rUncached, rPgx)
	listP99 := rList.Latency.Quantile(0.99)
	if ran("GET, cached", "bare go-redis GET") {
		r.Check("cached GET ≥ 0.60 × bare go-redis GET", cachedRatio >= 0.6 && rCached.Errors == 0,
			fmt.Sprintf("%.3f (%s)", cachedRatio, roundRatios("GET, cached", "bare go-redis GET")))
	}
	if ran("GET, uncached", "bare pgx select") {
		r.Check("uncached GET ≥ 0.70 × bare pgx select", uncachedRatio >= 0.7 && rUncached.Errors == 0,
			fmt.Sprintf("%.3f (%s)", uncachedRatio, roundRatios("GET, uncached", "bare pgx select")))
	}
	if ran("list, status filter") {
		// The bare list's p99 beside ours tells a miss of the function
		// from a miss of the machine: it is the same query and encoding
		// with nothing of the function around them.
		detail := loadgen.Ms(listP99) + " (" + roundP99s("list, status filter")
		if ran("bare pgx list") {
			detail += "; bare pgx list " + loadgen.Ms(rPgxList.Latency.Quantile(0.99))
		}
		r.Check(fmt.Sprintf("list p99 < 10ms at %d clients", cfg.Concurrency), listP99 < 10*time.Millisecond && rList.Errors == 0, detail+")")
	}
	for _, c := range []struct{ name, what string }{
		{"list, one project", "a project's list (status filter, newest first, 50)"},
		{"list, custom field", "a project's list filtered by a custom field (select, a third of the project)"},
		{"list, as a member", fmt.Sprintf("a member's list across %d projects", memberProjects)},
		{"GET activity", fmt.Sprintf("an activity page (50 of %d lines)", activityLines)},
		{"GET comments", fmt.Sprintf("a page of 50 comments, %d in the table", commentsSeeded)},
		{"GET /trash", fmt.Sprintf("a page of 50 of the member's trash, %d trashed tasks in the table", trashSeeded)},
		{"GET /me/preferences", "the caller's preferences"},
		{"GET fields", fmt.Sprintf("a project's %d field definitions", benchFields)},
	} {
		if ran(c.name) {
			p99 := res[c.name].Latency.Quantile(0.99)
			r.Check(fmt.Sprintf("%s p99 < 10ms at %d clients", c.what, cfg.Concurrency), p99 < 10*time.Millisecond && res[c.name].Errors == 0,
				loadgen.Ms(p99)+" ("+roundP99s(c.name)+")")
		}
	}
	if ran("PATCH", "bulk PATCH of 100") {
		single, bulk := rPatch.Latency.Quantile(0.5), rBulk.Latency.Quantile(0.5)
		r.Check(fmt.Sprintf("a bulk PATCH of %d tasks under 10 × a single PATCH (p50, one client)", bulkSize), bulk < 10*single && rBulk.Errors == 0,
			fmt.Sprintf("%s against %s: %.1f×", loadgen.Ms(bulk), loadgen.Ms(single), float64(bulk)/float64(single)))
	}
	if ran("PATCH", "trash + restore") {
		// Two writes, each a PATCH's work and its parent's bookkeeping.
		single, both := rPatch.Latency.Quantile(0.5), rCycle.Latency.Quantile(0.5)
		r.Check("a trash and a restore under 3 × a single PATCH (p50, one client)", both < 3*single && rCycle.Errors == 0,
			fmt.Sprintf("%s against %s: %.1f×", loadgen.Ms(both), loadgen.Ms(single), float64(both)/float64(single)))
	}
	// The write targets (#20): each route at least half its ceiling.
	writeTargets := []struct {
		ours, ceiling *loadgen.Result
		metric        string
	}{
		{&rCreate, &rPgxInsert, "create/pgx-insert"},
		{&rCreate, &rVerifyInsert, "create/verify-insert"},
		{&rUpdate, &rPgxUpdate, "update/pgx-update"},
	}
	for _, t := range writeTargets {
		if ran(t.ours.Name, t.ceiling.Name) {
			ratio := loadgen.Ratio(*t.ours, *t.ceiling)
			r.Check(fmt.Sprintf("%s ≥ 0.5 × %s", t.ours.Name, t.ceiling.Name), ratio >= 0.5 && t.ours.Errors == 0,
				fmt.Sprintf("%.3f (%s)", ratio, roundRatios(t.ours.Name, t.ceiling.Name)))
		}
	}
	// The member's list (#20) against the store's List in the member's
	// scope: the same 21 branches, without the route.
	if ran("list, as a member", "bare pgx list, as a member") {
		ratio := loadgen.Ratio(rListMember, rPgxListMember)
		r.Check("a member's list ≥ 0.7 × bare pgx list, as a member", ratio >= 0.7 && rListMember.Errors == 0,
			fmt.Sprintf("%.3f (%s)", ratio, roundRatios("list, as a member", "bare pgx list, as a member")))
	}
	if ran("create", "ingest, structured") {
		ratio := loadgen.Ratio(rIngest, rCreate)
		r.Check("ingest of structured create commands ≥ 0.5 × the create route", ratio >= 0.5 && rIngest.Errors == 0,
			fmt.Sprintf("%.3f (%s)", ratio, roundRatios("ingest, structured", "create")))
	}
	fmt.Println()
	_, _ = r.WriteTo(os.Stdout)
	fmt.Println()

	for _, res := range []loadgen.Result{rCached, rUncached, rMiss, rList, rListMember, rListProject, rListField, rGetProject, rListProjects, rPutMember, rPatchProject, rListMembers, rActivity, rComments, rRelations, rTrash, rGetPrefs, rPutPrefs, rPatch, rBulk, rCycle, rCreate, rIngest, rUpdate} {
		if !ran(res.Name) {
			continue
		}
		metric := strings.NewReplacer(", ", "-", " ", "-").Replace(res.Name)
		b.ReportMetric(res.Rate(), metric+"-req/s")
		b.ReportMetric(float64(res.Latency.Quantile(0.99).Microseconds()), metric+"-p99-µs")
	}
	if ran("GET, cached", "bare go-redis GET") {
		b.ReportMetric(cachedRatio, "cached/redis")
	}
	if ran("GET, uncached", "bare pgx select") {
		b.ReportMetric(uncachedRatio, "uncached/pgx")
	}
	for _, t := range writeTargets {
		if ran(t.ours.Name, t.ceiling.Name) {
			b.ReportMetric(loadgen.Ratio(*t.ours, *t.ceiling), t.metric)
		}
	}
	if cfg.Strict && !r.Passed() {
		b.Error("targets missed (BENCH_STRICT)")
	}
	for _, res := range []loadgen.Result{rStatic, rRedis, rPgx, rPgxList, rCached, rUncached, rMiss, rList, rListMember, rListProject, rGetProject, rListProjects, rPutMember, rPatchProject, rListMembers, rActivity, rComments, rRelations, rTrash, rGetPrefs, rPutPrefs, rPatch, rBulk, rCycle, rCreate, rIngest,
		rPgxInsert, rVerifyInsert, rPgxUpdate, rUpdate, rPgxListProject, rPgxListMember} {
		if res.Errors > 0 {
			b.Errorf("%s: %d errors, first: %v", res.Name, res.Errors, res.FirstError)
		}
	}
}

// seed makes sure cfg.DatabaseURL holds the migrated schema and exactly
// cfg.Rows seeded tasks, reusing them when they are there, and returns a
// pool on it and what it did.
func seed(ctx context.Context, cfg benchConfig) (*pgxpool.Pool, string, error) {
	if err := pg.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, "", err
	}
	if err := migrations.Apply(ctx, cfg.DatabaseURL); err != nil {
		return nil, "", err
	}
	db, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, "", err
	}
	// A run that died before its cleanup leaves its creates behind.
	if _, err := db.Exec(ctx, "DELETE FROM tasks WHERE owner_id = $1", writer); err != nil {
		db.Close()
		return nil, "", err
	}
	// Live tasks only: the trash scenario's tasks (seedTrash) are kept in
	// their owners' personal projects between runs; counted, they made
	// every run seed the million again.
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM tasks WHERE deleted_at IS NULL").Scan(&n); err != nil {
		db.Close()
		return nil, "", err
	}
	// Tables seeded before projects moved into personal ones: seed again.
	var teams int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM tasks WHERE project LIKE '~%' AND deleted_at IS NULL").Scan(&teams); err != nil {
		db.Close()
		return nil, "", err
	}
	did := "reused"
	if n != cfg.Rows || teams > 0 {
		did = "seeded"
		if err := fill(ctx, db, cfg.Rows); err != nil {
			db.Close()
			return nil, "", fmt.Errorf("seeding %d tasks: %w", cfg.Rows, err)
		}
	}
	if err := memberships(ctx, db); err != nil {
		db.Close()
		return nil, "", err
	}
	if err := seedFields(ctx, db); err != nil {
		db.Close()
		return nil, "", err
	}
	// Steady state for every run: visibility map set, statistics fresh.
	if _, err := db.Exec(ctx, "VACUUM ANALYZE tasks"); err != nil {
		db.Close()
		return nil, "", err
	}
	return db, did, nil
}

// memberships gives the member its roles in the first memberProjects
// projects (maintainer of team-0, member of the rest) and the teammate a
// role the PUT scenario sets again and again.
func memberships(ctx context.Context, db *pgxpool.Pool) error {
	const q = `
INSERT INTO project_members (project, subject, role, added_by)
SELECT 'team-' || g, $1, CASE WHEN g = 0 THEN 'maintainer' ELSE 'member' END, 'bench'
FROM generate_series(0, $2::int - 1) AS g
UNION ALL
SELECT 'team-0', $3, 'member', 'bench'
ON CONFLICT (project, subject) DO UPDATE SET role = EXCLUDED.role`
	_, err := db.Exec(ctx, q, member, memberProjects, teammate)
	return err
}

// benchFields is how many custom fields team-3 defines for the GET
// fields scenario: a fifth of the limit, select fields with options among
// them.
const benchFields = 10

// seedFieldDefinitions defines benchFields fields in team-3, unless it has them.
func seedFieldDefinitions(ctx context.Context, db *pgxpool.Pool) error {
	const q = `
INSERT INTO custom_fields (project, name, type, options, position, created_by)
SELECT 'team-3', 'field ' || g,
       CASE WHEN g % 2 = 0 THEN 'select' ELSE 'number' END,
       CASE WHEN g % 2 = 0 THEN '[{"id":"opt_aaaaaaaa","name":"low"},{"id":"opt_bbbbbbbb","name":"medium"},{"id":"opt_cccccccc","name":"high"}]'::jsonb ELSE '[]' END,
       g, 'bench'
FROM generate_series(0, $1::int - 1) AS g
ON CONFLICT DO NOTHING`
	_, err := db.Exec(ctx, q, benchFields)
	return err
}

// benchField is the custom field the list scenario filters the
// teammates' project by: a select of three options, "high" on a third of
// its tasks (about 330 of its ~1000, 66 a status).
const (
	benchField       = "severity"
	benchFieldFilter = "&field." + benchField + "=high"
)

// seedFields gives teammatesProject the select field benchField and its
// tasks a value each (every third "high"), unless it has them.
func seedFields(ctx context.Context, db *pgxpool.Pool) error {
	const def = `
INSERT INTO custom_fields (project, name, type, options, position, created_by)
SELECT $1, $2, 'select', '[{"id": "low", "name": "low"}, {"id": "high", "name": "high"}, {"id": "critical", "name": "critical"}]', 0, 'bench'
WHERE NOT EXISTS (SELECT FROM custom_fields WHERE project = $1 AND lower(name) = $2 AND deleted_at IS NULL)`
	const values = `
UPDATE tasks
SET fields = jsonb_build_object(d.id::text, (ARRAY['low', 'high', 'critical'])[1 + abs(hashtext(tasks.id::text)) % 3])
FROM custom_fields AS d
WHERE d.project = $1 AND lower(d.name) = $2 AND d.deleted_at IS NULL
  AND tasks.project = $1 AND NOT tasks.fields ? d.id::text`
	for _, q := range []string{def, values} {
		if _, err := db.Exec(ctx, q, teammatesProject, benchField); err != nil {
			return fmt.Errorf("seeding custom fields: %w", err)
		}
	}
	return nil
}

// bulkSize is how many tasks one bulk PATCH changes.
const bulkSize = 100

// writerIDs makes n tasks of the writer (deleted after the run, as its
// creates are) and returns their ids.
func writerIDs(ctx context.Context, db *pgxpool.Pool, n int) ([]string, error) {
	rows, _ := db.Query(ctx, `
INSERT INTO tasks (id, title, status, priority, owner_id)
SELECT gen_random_uuid(), 'changed by make bench', 'todo', 'low', $1 FROM generate_series(1, $2::int)
RETURNING id::text`, writer, n)
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// trashSize is how many tasks the bench keeps in the trash, one in ten
// of them the member's.
const trashSize = 20_000

// seedTrash puts trashSize tasks in the trash, unless it holds them:
// tasks of their own (in their owners' personal projects), so no other
// scenario's rows go. It returns how many trashed tasks there are.
func seedTrash(ctx context.Context, db *pgxpool.Pool) (int, error) {
	var have int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM tasks WHERE deleted_at IS NOT NULL`).Scan(&have); err != nil || have >= trashSize {
		return have, err
	}
	const q = `
INSERT INTO tasks (id, title, status, priority, owner_id, deleted_at, deleted_by)
SELECT gen_random_uuid(), 'trashed by make bench', 'todo', 'low', o.owner, now() - g * interval '1 minute', o.owner
FROM generate_series(1, $1::int) AS g,
     LATERAL (SELECT CASE WHEN g % 10 = 0 THEN $2 ELSE 'bench-trasher-' || (g % 100) END AS owner) AS o`
	if _, err := db.Exec(ctx, q, trashSize-have, member); err != nil {
		return 0, err
	}
	// As autovacuum would soon: without statistics of the new rows the
	// planner takes every trash index for empty, and any will do.
	if _, err := db.Exec(ctx, "ANALYZE tasks"); err != nil {
		return 0, err
	}
	return trashSize, nil
}

// seedRelations relates each hot task to the next three (blocks,
// relates_to, duplicates), so each lists six relations, both directions.
func seedRelations(ctx context.Context, db *pgxpool.Pool, hot []string) error {
	const q = `
INSERT INTO task_relations (task_id, kind, other_id, created_by)
SELECT h.id::uuid, k.kind, (($1::text[])[1 + (h.n + k.step) % cardinality($1::text[])])::uuid, 'bench'
FROM unnest($1::text[]) WITH ORDINALITY AS h(id, n),
     (VALUES ('blocks', 0), ('relates_to', 1), ('duplicates', 2)) AS k(kind, step)
-- written directly, past the cycle check: the last task does not block the first
WHERE k.kind <> 'blocks' OR h.n < cardinality($1::text[])
ON CONFLICT DO NOTHING`
	_, err := db.Exec(ctx, q, hot)
	return err
}

// hotComments is how many comments each hot task has: pages of 50 full.
const hotComments = 120

// seedComments makes the table hold n comments, unless it does: the hot
// tasks hotComments each, the rest on tasks drawn across the table. It
// returns how many there are.
func seedComments(ctx context.Context, db *pgxpool.Pool, hot []string, n int) (int, error) {
	var have int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM comments").Scan(&have); err != nil {
		return 0, err
	}
	if have >= n {
		return have, nil
	}
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		for _, s := range []string{"SET LOCAL synchronous_commit = off", "SET LOCAL statement_timeout = 0", "TRUNCATE comments"} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		const onHot = `
INSERT INTO comments (id, task_id, author, body, created_at, updated_at)
SELECT gen_random_uuid(), t::uuid, 'user-' || (g % 1000), 'Seeded comment ' || g || ' with **Markdown**', now(), now()
FROM unnest($1::text[]) AS t, generate_series(1, $2::int) AS g`
		if _, err := tx.Exec(ctx, onHot, hot, hotComments); err != nil {
			return err
		}
		// The rest on every tenth-ish task, ten or so each: a sample of
		// ids repeated, which the planner joins without a sort.
		const spread = `
INSERT INTO comments (id, task_id, author, body, created_at, updated_at)
SELECT gen_random_uuid(), t.id, 'user-' || (g % 1000), 'Seeded comment ' || g, now(), now()
FROM (SELECT id FROM tasks TABLESAMPLE SYSTEM (10) REPEATABLE (3)) AS t, generate_series(1, $1::int) AS g`
		var sampled int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM tasks TABLESAMPLE SYSTEM (10) REPEATABLE (3)").Scan(&sampled); err != nil {
			return err
		}
		rest, sampled := max(0, n-len(hot)*hotComments), max(sampled, 1)
		per := max(1, (rest+sampled-1)/sampled) // rounded up: a second run finds n and reuses them
		_, err := tx.Exec(ctx, spread, per)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("seeding comments: %w", err)
	}
	if _, err := db.Exec(ctx, "VACUUM ANALYZE comments"); err != nil {
		return 0, err
	}
	err = db.QueryRow(ctx, "SELECT count(*) FROM comments").Scan(&have)
	return have, err
}

// activityLines is how many history lines each hot task has.
const activityLines = 120

// seedActivity gives each of ids activityLines lines of history, unless it
// has them: status changes by the member, as update-task writes them.
func seedActivity(ctx context.Context, db *pgxpool.Pool, ids []string) error {
	var have int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM task_activity WHERE task_id = ANY($1::uuid[])", ids).Scan(&have); err != nil {
		return err
	}
	if have >= activityLines*len(ids) {
		return nil
	}
	var rows [][]any
	for _, id := range ids {
		tid, err := uuid.Parse(id)
		if err != nil {
			return err
		}
		for i := range activityLines {
			lid, err := uuid.NewV7()
			if err != nil {
				return err
			}
			changes := fmt.Sprintf(`[{"field":"status","old":%q,"new":%q}]`, statuses[i%5], statuses[(i+1)%5])
			rows = append(rows, []any{lid, tid, member, "updated", changes})
		}
	}
	_, err := db.CopyFrom(ctx, pgx.Identifier{"task_activity"}, []string{"id", "task_id", "actor", "kind", "changes"}, pgx.CopyFromRows(rows))
	return err
}

// memberIDs returns n ids of tasks in the member's projects, the same on
// every run on the same table.
func memberIDs(ctx context.Context, db *pgxpool.Pool, n int) ([]string, error) {
	const q = `
SELECT id::text FROM tasks TABLESAMPLE BERNOULLI (2) REPEATABLE (7)
WHERE project IN (SELECT project FROM project_members WHERE subject = $1)
LIMIT $2`
	rows, _ := db.Query(ctx, q, member, n)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(ids) < n {
		err = fmt.Errorf("%d tasks of the member's projects sampled, want %d (BENCH_ROWS)", len(ids), n)
	}
	return ids, err
}

// fill replaces the table's rows with rows synthetic tasks, made in one
// statement on the server. Attributes come from three hashes of the row
// number, so they are spread like real data: 1000 projects (team-0 ...
// team-999) of about 1000 tasks each, 1000 owners (user-0 ... user-999)
// with about 1000 tasks each, three in four tasks assigned to one of them,
// statuses 20% each, four priorities, a due date for two in three, four
// label sets; one task every 30 seconds from 2025-01-01.
func fill(ctx context.Context, db *pgxpool.Pool, rows int) error {
	const projects = `
INSERT INTO projects (key, name, created_by)
SELECT 'team-' || g, 'Team ' || g, 'bench' FROM generate_series(0, 999) AS g
ON CONFLICT DO NOTHING`
	const q = `
INSERT INTO tasks (id, project, title, description, status, priority, due_at, owner_id, assignee_id, labels, created_at, updated_at)
SELECT gen_random_uuid(),
       'team-' || (h3 % 1000),
       'Task ' || g || ': ' || (ARRAY['review the release', 'fix the login page', 'write the report', 'call the customer', 'plan the sprint', 'update the docs'])[1 + h % 6],
       'Seeded by make bench; ref ' || (h2 % 10000),
       (ARRAY['todo', 'in_progress', 'blocked', 'done', 'cancelled'])[1 + h / 6 % 5],
       (ARRAY['low', 'medium', 'high', 'urgent'])[1 + h / 30 % 4],
       CASE WHEN h / 120 % 3 = 0 THEN NULL ELSE timestamptz '2026-01-01' + (h / 360 % 365) * interval '1 day' END,
       'user-' || (h2 % 1000),
       CASE WHEN h2 / 1000 % 4 = 0 THEN NULL ELSE 'user-' || (h2 / 4000 % 1000) END,
       CASE h / 4000 % 4
         WHEN 0 THEN '{}'::text[]
         WHEN 1 THEN ARRAY['backend']
         WHEN 2 THEN ARRAY['frontend', 'bug']
         ELSE ARRAY['ops']
       END,
       timestamptz '2025-01-01' + g * interval '30 seconds',
       timestamptz '2025-01-01' + g * interval '30 seconds'
FROM generate_series(1, $1::int) AS g,
     LATERAL (SELECT abs(hashint4(g)::bigint) AS h, abs(hashint8(g)::bigint) AS h2, abs(hashint4(-g)::bigint) AS h3) AS hashes`
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// One big load: no need to wait for each WAL flush, and sorting
		// for the GIN indexes goes faster with more memory. CASCADE: the
		// tables that refer to tasks (comments, history, relations) are
		// seeded afresh after it.
		for _, s := range []string{"SET LOCAL synchronous_commit = off", "SET LOCAL maintenance_work_mem = '256MB'", "SET LOCAL statement_timeout = 0", "TRUNCATE tasks CASCADE", projects} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, q, rows)
		return err
	})
}

// sampleIDs returns up to n ids spread over the whole table, in a random
// order that is the same for every run on the same table.
func sampleIDs(ctx context.Context, db *pgxpool.Pool, n, rows int) ([]string, error) {
	pct := min(100, 110*float64(n)/float64(max(rows, 1)))
	// Live tasks only: a reused table holds the trash scenario's, which a
	// GET answers 404.
	rows2, _ := db.Query(ctx, "SELECT id::text FROM tasks TABLESAMPLE BERNOULLI ($1) REPEATABLE (42) WHERE deleted_at IS NULL", pct)
	ids, err := pgx.CollectRows(rows2, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	if len(ids) < 1000 {
		return nil, fmt.Errorf("%d tasks sampled, want at least 1000 (BENCH_ROWS)", len(ids))
	}
	return ids[:min(n, len(ids))], nil
}

func fetch(ctx context.Context, url, token string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body, resp.Header, err
}

// startProc runs path with env added to ours and PORT set to a free
// loopback port, waits until ready (a path) answers 200, and stops it with
// SIGTERM when b ends. It returns the base URL; output goes to
// logs/name.log, whose end is shown if the process does not come up.
func startProc(b *testing.B, logs, name, path string, env []string, ready string) proc {
	b.Helper()
	port, err := freePort()
	if err != nil {
		b.Fatal(err)
	}
	logPath := filepath.Join(logs, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.Env = append(append(os.Environ(), env...), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(exited)
	}()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return proc{url: base, pid: cmd.Process.Pid}
			}
		}
		select {
		case <-exited:
			b.Fatalf("%s exited at start:\n%s", name, tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not ready on %s%s:\n%s", name, base, ready, tail(logPath))
		}
	}
}

// proc is a server the benchmark started: where it listens, and its pid
// for the CPU accounting.
type proc struct {
	url string
	pid int
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module")
	}
	return filepath.Dir(mod), nil
}

func mustRedisOptions(b *testing.B, url string) *redis.Options {
	b.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	return o
}

// deleteKeys removes what a run left in Redis under prefix.
func deleteKeys(rdb *redis.Client, prefix string) {
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}

// machine describes where the figures come from.
func machine(ctx context.Context, db *pgxpool.Pool, rdb *redis.Client) [][2]string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					mem = fmt.Sprintf(", %.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	var pgVersion string
	_ = db.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion)
	redisVersion := "?"
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
				redisVersion = v
			}
		}
	}
	return [][2]string{
		{"machine", fmt.Sprintf("%d × %s%s, %s/%s", runtime.NumCPU(), cpu, mem, runtime.GOOS, runtime.GOARCH)},
		{"software", fmt.Sprintf("%s, PostgreSQL %s, Redis %s; load generator, functions, ceilings, PostgreSQL and Redis share the machine", runtime.Version(), pgVersion, redisVersion)},
	}
}

// loadavg is the 1, 5 and 15 minute load averages: on a shared machine
// they tell how far to trust the figures.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// ceilingEnvName selects, in the test binary's environment, the ceiling
// server TestMain runs instead of the tests.
const ceilingEnvName = "LOADGEN_CEILING"

// serveCeiling runs one ceiling server on $PORT until SIGTERM, with the
// database and Redis settings the functions read, so its pools are the
// functions' pools.
func serveCeiling(kind string) int {
	// As a function runs: same signals, same runtime settings (GOGC, memory limit).
	return lifecycle.Run("ceiling "+kind, func(ctx context.Context) error { return ceiling(ctx, kind) })
}

// kafkaPortEnv is the port the benchmark's broker listens on.
const kafkaPortEnv = "LOADGEN_KAFKA_PORT"

func ceiling(ctx context.Context, kind string) error {
	if kind == "kafka" {
		return serveKafka(ctx)
	}
	var cfg taskapi.Config
	if err := config.Load(&cfg); err != nil {
		return err
	}
	var h http.Header
	if err := json.Unmarshal([]byte(os.Getenv("LOADGEN_HEADER")), &h); err != nil {
		return fmt.Errorf("LOADGEN_HEADER: %w", err)
	}
	var handler http.Handler
	switch kind {
	case "static":
		body, err := os.ReadFile(os.Getenv("LOADGEN_BODY_FILE"))
		if err != nil {
			return err
		}
		handler = loadgen.StaticHandler(body, h)
	case "redis":
		opts, err := redis.ParseURL(cfg.Cache.RedisURL)
		if err != nil {
			return err
		}
		opts.PoolSize = cfg.Cache.PoolSize
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		prefix := os.Getenv("LOADGEN_REDIS_PREFIX")
		handler = loadgen.RedisHandler(rdb, func(id string) string { return prefix + id }, h)
	case "pgx-insert", "verify-insert", "pgx-update":
		db, err := pg.Open(ctx, cfg.DB)
		if err != nil {
			return err
		}
		defer db.Close()
		switch kind {
		case "pgx-insert":
			handler = loadgen.PgxInsertHandler(db.Primary, writer)
		case "pgx-update":
			handler = loadgen.PgxUpdateHandler(db.Primary)
		default:
			// Configured as the functions configure theirs (OIDC_*).
			v, err := auth.NewVerifier(cfg.Auth, nil)
			if err != nil {
				return err
			}
			handler = loadgen.VerifyInsertHandler(v, db.Primary)
		}
		// These answer only their write; startProc waits on /readyz.
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
		handler = mux
	case "pgx", "pgx-list":
		db, err := pg.Open(ctx, cfg.DB)
		if err != nil {
			return err
		}
		defer db.Close()
		if kind == "pgx" {
			handler = loadgen.PgxHandler(db.Replica, h)
			break
		}
		store, err := task.NewStore(db)
		if err != nil {
			return err
		}
		// The member's scope as the list route builds it: its personal
		// project, then the projects its roles name, and its assigned tasks.
		rows, _ := db.Replica.Query(ctx, `SELECT project FROM project_members WHERE subject = $1 ORDER BY project`, member)
		projects, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		scope := &task.Scope{Projects: append([]string{project.PersonalPrefix + member}, projects...), Assignee: member}
		handler = loadgen.PgxListHandler(store, scope)
	default:
		return fmt.Errorf("unknown ceiling %q", kind)
	}
	return serveUntil(ctx, "127.0.0.1:"+strconv.Itoa(cfg.Server.Port), handler)
}

// serveUntil serves handler on addr until ctx ends, then shuts down.
func serveUntil(ctx context.Context, addr string, handler http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

// serveKafka runs the broker of BENCH_KAFKA until ctx ends, and answers
// /readyz on PORT once it listens.
func serveKafka(ctx context.Context) error {
	port, err := strconv.Atoi(os.Getenv(kafkaPortEnv))
	if err != nil {
		return fmt.Errorf("%s: %w", kafkaPortEnv, err)
	}
	broker, err := devkafka.Start(devkafka.Config{Port: port, Topics: []string{events.DefaultTasksTopic}})
	if err != nil {
		return err
	}
	defer func() { _ = broker.Close() }()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
	return serveUntil(ctx, "127.0.0.1:"+os.Getenv("PORT"), mux)
}
