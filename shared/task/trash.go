package task

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/pg"
)

// The trash. A trashed task keeps its row, with deleted_at and deleted_by
// set, so its comments, history and relations stay with it; every read of
// tasks but the trash's own leaves it out (deleted_at IS NULL), so it is
// gone for lists, GET, reports and relations until it is restored. Its
// parent stops counting it while it is trashed. Cleanup purges it after
// the retention, or a caller at once.

// Trashed is a task in the trash, as GET /trash shows it.
type Trashed struct {
	Task
	DeletedAt time.Time `json:"deleted_at"`
	DeletedBy string    `json:"deleted_by"`
}

// MarshalJSON is the task's JSON with the trash's two members after it.
func (t Trashed) MarshalJSON() ([]byte, error) { return t.AppendJSON(make([]byte, 0, 512)), nil }

// AppendJSON appends t's JSON to b, as Task.AppendJSON does a task's.
func (t *Trashed) AppendJSON(b []byte) []byte {
	b = t.Task.AppendJSON(b)
	b = append(b[:len(b)-1], `,"deleted_at":`...)
	b = appendTime(b, t.DeletedAt)
	b = append(b, `,"deleted_by":`...)
	b = AppendJSONString(b, t.DeletedBy)
	return append(b, '}')
}

// Errors of the trash.
var (
	// ErrNotTrashed: no task of that id is in the trash (or none the
	// caller may see there, which must read the same).
	ErrNotTrashed = errs.New(errs.NotFound, "task not in the trash", "no task of that id is in your trash")
	// ErrRestoreRefused: the caller trashed the task but may no longer
	// delete it, so may not put it back into its project either.
	ErrRestoreRefused = errs.New(errs.Conflict, "restore refused",
		"the task's project is no longer one you may restore it into; ask a maintainer of the project").Problem("restore-refused", "Restore refused")
)

// Trash moves a task to the trash if check, given the current row under a
// row lock, returns nil (nil allows it), and returns it as trashed, at its
// new version. Its event is task.trashed and its history line "trashed",
// made by actor; its parent counts one subtask less (and is appended to
// touched).
func (s *Store) Trash(ctx context.Context, actor string, id uuid.UUID, check func(cur Task) error, touched ...Touched) (Trashed, error) {
	var (
		out     Trashed
		parents []Task
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		parents = nil
		cur, err := lockTask(ctx, tx, id, "trash")
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(cur); err != nil {
				return err
			}
		}
		const q = `
UPDATE tasks
SET deleted_at = now(),
    deleted_by = $2,
    version = version + 1
WHERE id = $1
RETURNING ` + trashColumns
		rows, _ := tx.Query(ctx, q, id, actor)
		if out, err = collectTrashed(rows, "trash"); err != nil {
			return err
		}
		if err := activity.Add(ctx, tx, id, actor, activity.Trashed, nil); err != nil {
			return err
		}
		if err := s.addEvents(ctx, tx, id, events.TaskTrashedData{Actor: actor, Task: out.Snapshot()}); err != nil {
			return err
		}
		parents, err = s.moveParents(ctx, tx, actor, []uuid.UUID{id}, func(uuid.UUID) (int32, int32) { return -1, -closedCount(cur.Status) })
		return err
	})
	if err != nil {
		return Trashed{}, err
	}
	s.publish(ctx, id)
	s.report(ctx, parents, touched)
	return out, nil
}

func closedCount(st Status) int32 {
	if st.Closed() {
		return 1
	}
	return 0
}

// Restore takes a task out of the trash if check, given it under a row
// lock, returns nil, and returns it as it was, at a new version. Its
// event is task.restored and its history line "restored"; its parent
// counts it again.
func (s *Store) Restore(ctx context.Context, actor string, id uuid.UUID, check func(cur Trashed) error, touched ...Touched) (Task, error) {
	var (
		out     Task
		parents []Task
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		parents = nil
		cur, err := lockTrashed(ctx, tx, id, "restore")
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		const q = `
UPDATE tasks
SET deleted_at = NULL,
    deleted_by = NULL,
    version = version + 1,
    updated_at = now()
WHERE id = $1
RETURNING ` + Columns
		rows, _ := tx.Query(ctx, q, id)
		if out, err = collectOne(rows, "restore"); err != nil {
			return err
		}
		if out, err = s.presentOne(ctx, tx, out); err != nil {
			return err
		}
		if err := activity.Add(ctx, tx, id, actor, activity.Restored, nil); err != nil {
			return err
		}
		if err := s.addEvents(ctx, tx, id, events.TaskRestoredData{Actor: actor, Task: out.Snapshot()}); err != nil {
			return err
		}
		parents, err = s.moveParents(ctx, tx, actor, []uuid.UUID{id}, func(uuid.UUID) (int32, int32) { return 1, closedCount(cur.Status) })
		return err
	})
	if err != nil {
		return Task{}, err
	}
	s.publish(ctx, id)
	s.report(ctx, parents, touched)
	return out, nil
}

// Purge deletes a trashed task for good if check, given it under a row
// lock, returns nil: its comments, history and relations go with it. Its
// event is task.purged, made by actor ("" for cleanup). Its parent stopped
// counting it when it was trashed.
func (s *Store) Purge(ctx context.Context, actor string, id uuid.UUID, check func(cur Trashed) error) error {
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		cur, err := lockTrashed(ctx, tx, id, "purge")
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		return s.purge(ctx, tx, actor, []Trashed{cur})
	})
	if err != nil {
		return err
	}
	s.publish(ctx, id)
	return nil
}

func (s *Store) purge(ctx context.Context, tx pgx.Tx, actor string, ts []Trashed) error {
	ids := make([]uuid.UUID, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tasks WHERE id = ANY($1::uuid[]) AND deleted_at IS NOT NULL`, uuidStrings(ids)); err != nil {
		return fmt.Errorf("task: purge: %w", err)
	}
	for _, t := range ts {
		d := events.TaskPurgedData{Actor: actor, DeletedAt: t.DeletedAt, DeletedBy: t.DeletedBy, Task: t.Snapshot()}
		if err := s.addEvents(ctx, tx, t.ID, d); err != nil {
			return err
		}
	}
	return nil
}

// PurgeTrashedBefore purges up to batch tasks trashed before cutoff, oldest
// first, and returns their ids for the caller to drop from the task cache.
// Rows another transaction holds (a restore in flight, a concurrent
// cleanup's batch) are skipped, so two cleanups share the work.
func (s *Store) PurgeTrashedBefore(ctx context.Context, cutoff time.Time, batch int) ([]uuid.UUID, error) {
	if batch < 1 {
		return nil, fmt.Errorf("task: purge: batch %d must be positive", batch)
	}
	var ids []uuid.UUID
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		q := `
SELECT ` + trashColumns + `
FROM tasks
WHERE deleted_at IS NOT NULL
  AND deleted_at < $1
ORDER BY deleted_at, id
LIMIT ` + strconv.Itoa(batch) + `
FOR UPDATE SKIP LOCKED`
		rows, _ := tx.Query(ctx, q, cutoff)
		ts, err := pgx.CollectRows(rows, scanTrashed())
		if err != nil {
			return fmt.Errorf("task: purge: %w", err)
		}
		ids = ids[:0]
		for _, t := range ts {
			ids = append(ids, t.ID)
		}
		if len(ts) == 0 {
			return nil
		}
		return s.purge(ctx, tx, "", ts)
	})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		s.publish(ctx, id)
	}
	return ids, nil
}

// TrashScope is the trash a caller sees: everything (All), or what it
// trashed, what it may delete (every task of the projects it maintains,
// its own tasks of projects it may write to, or anywhere: OwnAnywhere).
type TrashScope struct {
	All         bool
	Subject     string
	Maintains   []string
	Writes      []string
	OwnAnywhere bool
}

// TrashQuery is a page of the trash, most recently trashed first.
type TrashQuery struct {
	Scope TrashScope
	Limit int     // 1..MaxListLimit
	After *Cursor // its CreatedAt is the deleted_at of the last row seen
}

// ListTrash returns a page of the trash, from the replica. A scoped
// caller's page is a UNION of ordered, limited branches, one per part of
// its scope (what it trashed; each project it maintains, up to
// maxProjectBranches; its own tasks), each an ordered scan of the part's
// index (migration 18), so a page reads about a page of rows a branch
// however small the caller's share of the trash. UNION, not UNION ALL: a
// task may be in several parts.
func (s *Store) ListTrash(ctx context.Context, q TrashQuery) ([]Trashed, *Cursor, error) {
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return nil, nil, fmt.Errorf("task: trash: limit %d not in 1..%d", q.Limit, MaxListLimit)
	}
	sql, args := trashSQL(q)
	var items []Trashed
	// Every branch is meant as an ordered scan that stops after a page.
	// The planner multiplies "trashed" by "of this project (or owner)" as
	// if independent, so for someone with thousands of trashed tasks in
	// one project it expects a few dozen, and prefers a bitmap scan that
	// fetches and sorts them all: 40 ms p99 instead of a few (make bench).
	// Bitmap scans are turned off for this query alone (SET LOCAL, in its
	// own read-only transaction).
	err := pgx.BeginTxFunc(ctx, s.db.Replica, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL enable_bitmapscan = off"); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, sql, args...)
		var err error
		items, err = pgx.CollectRows(rows, scanTrashed())
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("task: trash: %w", err)
	}
	var next *Cursor
	if len(items) > q.Limit {
		items = items[:q.Limit]
		last := items[len(items)-1]
		next = &Cursor{CreatedAt: last.DeletedAt, ID: last.ID}
	}
	tasks := make([]Task, len(items))
	for i := range items {
		tasks[i] = items[i].Task
	}
	if err := s.present(ctx, s.db.Replica, tasks); err != nil {
		return nil, nil, err
	}
	for i := range items {
		items[i].Fields = tasks[i].Fields
	}
	return items, next, nil
}

// trashSQL is ListTrash's query and its arguments.
func trashSQL(q TrashQuery) (string, []any) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	var after string
	if q.After != nil {
		after = "\n  AND (deleted_at, id) < (" + arg(q.After.CreatedAt) + ", " + arg(q.After.ID) + ")"
	}
	tail := "\nORDER BY deleted_at DESC, id DESC\nLIMIT " + strconv.Itoa(q.Limit+1)
	branch := func(cond string) string {
		return "SELECT " + trashColumns + "\nFROM tasks\nWHERE " + cond + after + tail
	}
	const trashed = "deleted_at IS NOT NULL"
	var sql string
	if q.Scope.All {
		sql = branch(trashed)
	} else {
		me := arg(q.Scope.Subject)
		// deleted_by is set exactly while the task is trashed (see
		// migration 18 for why this branch says nothing more).
		branches := []string{branch("deleted_by = " + me)}
		if len(q.Scope.Maintains) > maxProjectBranches {
			branches = append(branches, branch(trashed+"\n  AND project = ANY("+arg(q.Scope.Maintains)+")"))
		} else {
			for _, k := range q.Scope.Maintains {
				branches = append(branches, branch(trashed+"\n  AND project = "+arg(k)))
			}
		}
		switch {
		case q.Scope.OwnAnywhere:
			branches = append(branches, branch(trashed+"\n  AND owner_id = "+me))
		case len(q.Scope.Writes) > 0:
			branches = append(branches, branch(trashed+"\n  AND owner_id = "+me+"\n  AND project = ANY("+arg(q.Scope.Writes)+")"))
		}
		sql = "SELECT " + trashColumns + "\nFROM (\n(" + strings.Join(branches, ")\nUNION\n(") + ")\n) AS t" + tail
	}
	return sql, args
}

const trashColumns = Columns + ", deleted_at, deleted_by"

func lockTrashed(ctx context.Context, tx pgx.Tx, id uuid.UUID, op string) (Trashed, error) {
	rows, _ := tx.Query(ctx, `SELECT `+trashColumns+` FROM tasks WHERE id = $1 AND deleted_at IS NOT NULL FOR UPDATE`, id)
	return collectTrashed(rows, op)
}

func collectTrashed(rows pgx.Rows, op string) (Trashed, error) {
	t, err := pgx.CollectOneRow(rows, scanTrashed())
	if errors.Is(err, pgx.ErrNoRows) {
		return Trashed{}, ErrNotTrashed
	}
	if err != nil {
		return Trashed{}, fmt.Errorf("task: %s: %w", op, err)
	}
	return t, nil
}

// scanTrashed reads rows of trashColumns: ScanRows' columns, then the two
// of the trash. Like ScanRows it reuses its targets: one per query.
func scanTrashed() pgx.RowToFunc[Trashed] {
	var (
		at    pgtype.Timestamptz
		by    pgtype.Text
		scan  = ScanRows()
		extra = []any{&at, &by}
	)
	return func(row pgx.CollectableRow) (Trashed, error) {
		t, err := scan(extraColumns{row, extra})
		if err != nil {
			return Trashed{}, err
		}
		return Trashed{Task: t, DeletedAt: at.Time, DeletedBy: by.String}, nil
	}
}

// extraColumns lets ScanRows' function read a row with more columns than
// Columns: Scan gets its targets followed by extra.
type extraColumns struct {
	pgx.CollectableRow
	extra []any
}

func (r extraColumns) Scan(dest ...any) error {
	return r.CollectableRow.Scan(append(dest, r.extra...)...)
}
