//go:build faults

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/taskfn/taskfn/shared/events"
)

// snapshot is a task as a row or an event shows it: the fields the
// writes change, and the version.
type snapshot struct {
	Version   int64     `json:"version"`
	Title     string    `json:"title"`
	Status    string    `json:"status"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s snapshot) String() string {
	return fmt.Sprintf("v%d %q %s", s.Version, s.Title, s.Status)
}

// stored is one task with every outbox row of its key.
type stored struct {
	row     snapshot
	created []snapshot
	updated map[int64][]snapshot // by the version the change made
	// status is the task.status_changed rows by version: "old>new".
	status map[int64][]string
	other  []string // event types no write here makes
}

// dbState is what the database holds after a run.
type dbState struct {
	tasks   map[uuid.UUID]*stored
	orphans []string // outbox rows of a key that is no task
	// titles are every title in a row or an event: the requests whose
	// change committed.
	titles map[string]bool
	events int
}

func loadState(ctx context.Context, db *pgxpool.Pool) (*dbState, error) {
	st := &dbState{tasks: map[uuid.UUID]*stored{}, titles: map[string]bool{}}
	rows, _ := db.Query(ctx, "SELECT id, version, title, status, updated_at FROM tasks")
	var (
		id uuid.UUID
		s  snapshot
	)
	_, err := pgx.ForEachRow(rows, []any{&id, &s.Version, &s.Title, &s.Status, &s.UpdatedAt}, func() error {
		st.tasks[id] = &stored{row: s, updated: map[int64][]snapshot{}, status: map[int64][]string{}}
		st.titles[s.Title] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tasks: %w", err)
	}
	rows, _ = db.Query(ctx, "SELECT key, type, data FROM outbox ORDER BY id")
	var (
		key, typ string
		data     []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &typ, &data}, func() error {
		st.events++
		var d struct {
			Task      snapshot `json:"task"`
			OldStatus string   `json:"old_status"`
			NewStatus string   `json:"new_status"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("outbox row %s %s: %w", key, typ, err)
		}
		st.titles[d.Task.Title] = true
		t, ok := st.tasks[uuid.MustParse(key)]
		if !ok {
			st.orphans = append(st.orphans, typ+" of "+key)
			return nil
		}
		switch typ {
		case events.TaskCreated:
			t.created = append(t.created, d.Task)
		case events.TaskUpdated:
			t.updated[d.Task.Version] = append(t.updated[d.Task.Version], d.Task)
		case events.TaskStatusChanged:
			t.status[d.Task.Version] = append(t.status[d.Task.Version], d.OldStatus+">"+d.NewStatus)
		default:
			t.other = append(t.other, typ)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return st, nil
}

// at is the task as its event of version v shows it.
func (t *stored) at(v int64) (snapshot, bool) {
	if v == 1 {
		if len(t.created) != 1 {
			return snapshot{}, false
		}
		return t.created[0], true
	}
	if len(t.updated[v]) != 1 {
		return snapshot{}, false
	}
	return t.updated[v][0], true
}

// consistent checks that no change is half-applied: a task at version v
// has exactly one task.created (of version 1) and one task.updated for
// each version 2..v, none beyond v; its row is the snapshot of its last
// event (title, status, updated_at); a task.status_changed exists for
// version k exactly when the status of k differs from that of k−1, and
// says so; every event belongs to a task. Each event is written in the
// transaction of its change, so together: every committed change has all
// its events, and every event is a committed change.
func (st *dbState) consistent() []string {
	var bad []string
	for id, t := range st.tasks {
		if len(t.created) != 1 || t.created[0].Version != 1 {
			bad = append(bad, fmt.Sprintf("task %s: %d task.created rows %v, want one of version 1", id, len(t.created), t.created))
			continue
		}
		for v := range t.updated {
			if v < 2 || v > t.row.Version {
				bad = append(bad, fmt.Sprintf("task %s at v%d: a task.updated of v%d", id, t.row.Version, v))
			}
		}
		for v := range t.status {
			if v < 2 || v > t.row.Version {
				bad = append(bad, fmt.Sprintf("task %s at v%d: a task.status_changed of v%d", id, t.row.Version, v))
			}
		}
		prev := t.created[0]
		for v := int64(2); v <= t.row.Version; v++ {
			cur, ok := t.at(v)
			if !ok {
				bad = append(bad, fmt.Sprintf("task %s at v%d: %d task.updated rows of v%d, want 1", id, t.row.Version, len(t.updated[v]), v))
				break
			}
			var want []string
			if cur.Status != prev.Status {
				want = []string{prev.Status + ">" + cur.Status}
			}
			if strings.Join(t.status[v], ",") != strings.Join(want, ",") {
				bad = append(bad, fmt.Sprintf("task %s v%d: task.status_changed %v, want %v", id, v, t.status[v], want))
			}
			prev = cur
		}
		if last, ok := t.at(t.row.Version); ok && (last.Title != t.row.Title || last.Status != t.row.Status || !last.UpdatedAt.Equal(t.row.UpdatedAt)) {
			bad = append(bad, fmt.Sprintf("task %s: row %v %s differs from its event %v %s", id, t.row, t.row.UpdatedAt, last, last.UpdatedAt))
		}
		if len(t.other) > 0 {
			bad = append(bad, fmt.Sprintf("task %s: unexpected events %v", id, t.other))
		}
	}
	for _, o := range st.orphans {
		bad = append(bad, "an event of no task: "+o)
	}
	return bad
}

// tally is what the clients saw, checked against the database.
type tally struct {
	tried, acked, refused int
	// unanswered: sent, no answer (the function died or the client gave
	// up); of which committed: its change is in the database.
	unanswered, committed int
	notSent               int // refused at connect: the function was down
	other                 map[int]int
	lost                  int // acknowledged, not in the database
}

func (t tally) String() string {
	s := fmt.Sprintf("%d writes tried, %d acknowledged, %d refused with 503, lost %d", t.tried, t.acked, t.refused, t.lost)
	if t.unanswered > 0 || t.notSent > 0 {
		s += fmt.Sprintf("; %d cut without an answer (%d of them committed), %d refused at connect", t.unanswered, t.committed, t.notSent)
	}
	if len(t.other) > 0 {
		s += fmt.Sprintf("; other statuses %v", t.other)
	}
	return s
}

// answers checks every answer against the database: an acknowledged
// write is there, with its outbox row, as answered; a refused one (503,
// with Retry-After) left nothing; no other status was answered. Without
// allowUnanswered every write must have had an answer.
func (st *dbState) answers(results []result, allowUnanswered bool) (tally, []string) {
	tl := tally{tried: len(results), other: map[int]int{}}
	var bad []string
	for _, r := range results {
		what := fmt.Sprintf("%s %q (worker %d, %s)", r.Op, r.Title, r.Worker, r.Start.Format("15:04:05.000"))
		switch {
		case r.ok():
			tl.acked++
			if r.Err != "" {
				bad = append(bad, what+": "+r.Err)
			}
			t, ok := st.tasks[r.Task]
			if !ok {
				tl.lost++
				bad = append(bad, fmt.Sprintf("%s: acknowledged %d, task %s not in the database", what, r.Code, r.Task))
				continue
			}
			snap, ok := t.at(r.Version)
			if !ok || snap.Title != r.Title || snap.Status != r.Status || t.row.Version < r.Version {
				tl.lost++
				bad = append(bad, fmt.Sprintf("%s: acknowledged v%d of %s; the database has %v, its event of v%d %v (found %v)", what, r.Version, r.Task, t.row, r.Version, snap, ok))
			}
		case r.Code == http.StatusServiceUnavailable:
			tl.refused++
			if n, err := strconv.Atoi(r.RetryAfter); err != nil || n < 1 {
				bad = append(bad, fmt.Sprintf("%s: 503 with Retry-After %q", what, r.RetryAfter))
			}
			if r.ContentType != "application/problem+json" {
				bad = append(bad, fmt.Sprintf("%s: 503 as %q", what, r.ContentType))
			}
			if st.titles[r.Title] {
				bad = append(bad, fmt.Sprintf("%s: refused with 503, but its change is in the database: %s", what, r.Body))
			}
		case r.Code == 0 && !r.Sent:
			tl.notSent++
			if st.titles[r.Title] {
				bad = append(bad, fmt.Sprintf("%s: never sent (%s), but its change is in the database", what, r.Err))
			}
		case r.Code == 0:
			tl.unanswered++
			if st.titles[r.Title] {
				tl.committed++
			}
			if !allowUnanswered {
				bad = append(bad, fmt.Sprintf("%s: no answer: %s", what, r.Err))
			}
		default:
			tl.other[r.Code]++
			bad = append(bad, fmt.Sprintf("%s: answered %d (its change committed: %t): %s", what, r.Code, st.titles[r.Title], strings.TrimSpace(r.Body)))
		}
	}
	return tl, bad
}

// lastAcked is the version of each task its last acknowledged write
// answered.
func lastAcked(results []result) map[uuid.UUID]int64 {
	out := map[uuid.UUID]int64{}
	for _, r := range results {
		if r.ok() && r.Version > out[r.Task] {
			out[r.Task] = r.Version
		}
	}
	return out
}

// cacheEntries checks the task cache under prefix against the database:
// no valid entry is newer than the task's row, and an entry's content is
// the task as it was at the entry's version (the event of that version),
// never a mix. It returns how many valid entries it checked. The layout
// is docs/cache.md's: task:<id> = "<generation> <kind> <version> <payload>",
// valid when the generation is task-generation's.
func (st *dbState) cacheEntries(ctx context.Context, rdb *redis.Client, prefix string) (int, []string, error) {
	gen, err := rdb.Get(ctx, prefix+"task-generation").Result()
	if err == redis.Nil {
		return 0, nil, nil // no generation: every entry is invalid
	}
	if err != nil {
		return 0, nil, err
	}
	var (
		bad     []string
		checked int
	)
	iter := rdb.Scan(ctx, 0, prefix+"task:*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		v, err := rdb.Get(ctx, key).Result()
		if err == redis.Nil {
			continue // expired meanwhile
		}
		if err != nil {
			return checked, bad, err
		}
		f := strings.SplitN(v, " ", 4)
		if len(f) < 3 || f[0] != gen {
			continue
		}
		id, err := uuid.Parse(strings.TrimPrefix(key, prefix+"task:"))
		if err != nil {
			bad = append(bad, "cache key "+key+": not a task id")
			continue
		}
		version, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			bad = append(bad, fmt.Sprintf("cache entry %s: version %q", key, f[2]))
			continue
		}
		checked++
		t, ok := st.tasks[id]
		switch f[1] {
		case "U", "P": // a task (project, assignee, JSON), a poison
			if !ok {
				bad = append(bad, fmt.Sprintf("cache entry %s of kind %s v%d: no such task in the database", id, f[1], version))
				continue
			}
			if version > t.row.Version {
				bad = append(bad, fmt.Sprintf("cache entry %s of kind %s v%d: newer than the database's v%d", id, f[1], version, t.row.Version))
				continue
			}
			if f[1] == "P" {
				continue
			}
			i := strings.IndexByte(v, '{')
			var e snapshot
			if i < 0 || json.Unmarshal([]byte(v[i:]), &e) != nil {
				bad = append(bad, fmt.Sprintf("cache entry %s: unreadable %q", id, v))
				continue
			}
			if snap, ok := t.at(version); !ok || e.Version != version || e.Title != snap.Title || e.Status != snap.Status {
				bad = append(bad, fmt.Sprintf("cache entry %s v%d holds %v, the task at v%d was %v", id, version, e, version, snap))
			}
		case "N":
			// "No such task", placed by a reader: a task created since
			// replaces it (version 0), and a create's id is new.
			if ok {
				bad = append(bad, fmt.Sprintf("cache entry %s: not found, but the task exists (v%d)", id, t.row.Version))
			}
		default:
			bad = append(bad, fmt.Sprintf("cache entry %s: kind %q (no deletes here)", id, f[1]))
		}
	}
	return checked, bad, iter.Err()
}

// reads checks GET /tasks/{id} of every task: found, at least at the
// version last acknowledged and at most the database's, with that
// version's content.
func (st *dbState) reads(ctx context.Context, get, token string, acked map[uuid.UUID]int64) []string {
	var bad []string
	c := &http.Client{Timeout: 10 * time.Second}
	for id, t := range st.tasks {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, get+"/tasks/"+id.String(), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			return append(bad, fmt.Sprintf("GET %s: %v", id, err))
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var e snapshot
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &e) != nil {
			bad = append(bad, fmt.Sprintf("GET %s: %d %s", id, resp.StatusCode, b))
			continue
		}
		snap, ok := t.at(e.Version)
		switch {
		case e.Version < acked[id]:
			bad = append(bad, fmt.Sprintf("GET %s: v%d, older than the acknowledged v%d", id, e.Version, acked[id]))
		case e.Version > t.row.Version:
			bad = append(bad, fmt.Sprintf("GET %s: v%d, newer than the database's v%d", id, e.Version, t.row.Version))
		case !ok || snap.Title != e.Title || snap.Status != e.Status:
			bad = append(bad, fmt.Sprintf("GET %s: %v, the task at that version was %v", id, e, snap))
		}
	}
	return bad
}

// report fails t with problems, at most 30 of them listed.
func report(t interface {
	Helper()
	Errorf(string, ...any)
}, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	sort.Strings(problems)
	shown := problems[:min(len(problems), 30)]
	t.Errorf("%s: %d problems:\n  %s", what, len(problems), strings.Join(shown, "\n  "))
}
