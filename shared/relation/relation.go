// Package relation is how tasks relate: subtasks, blockers, related and
// duplicate tasks. It is the one place with SQL for the task_relations
// table, and it keeps the two hierarchies (subtask_of, blocks) free of
// cycles even when relations are added concurrently.
package relation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/task"
)

// Kind is how a task relates to another: "A subtask_of B" (B is A's
// parent), "A blocks B", "A relates_to B", "A duplicates B".
type Kind string

const (
	SubtaskOf  Kind = "subtask_of"
	Blocks     Kind = "blocks"
	RelatesTo  Kind = "relates_to"
	Duplicates Kind = "duplicates"
)

// Kinds lists every kind.
var Kinds = []Kind{SubtaskOf, Blocks, RelatesTo, Duplicates}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// acyclic reports whether relations of k must never form a cycle.
func (k Kind) acyclic() bool { return k == SubtaskOf || k == Blocks }

// Relation is one row, seen from one of its tasks.
type Relation struct {
	TaskID    uuid.UUID // the task the relation was added to
	Kind      Kind
	OtherID   uuid.UUID
	CreatedBy string
	CreatedAt time.Time
}

// Errors the store returns.
var (
	ErrNotFound = errs.New(errs.NotFound, "relation not found", "")
	ErrExists   = errs.New(errs.Conflict, "relation exists", "the tasks are already related so").Problem("relation-exists", "Relation exists")
	ErrParent   = errs.New(errs.Conflict, "second parent",
		"the task already has a parent; remove that subtask_of relation first").Problem("has-parent", "Task has a parent")
	ErrSelf = errs.Validation(errs.FieldError{Field: "task_id", Detail: "must be another task"})
)

// CycleError refuses a relation that would close a cycle of its kind; Path
// is the cycle, from the new relation's task back to it.
type CycleError struct {
	Kind Kind
	Path []uuid.UUID
}

func (e *CycleError) Error() string { return "relation: " + e.detail() }

func (e *CycleError) detail() string {
	ids := make([]string, len(e.Path))
	for i, id := range e.Path {
		ids[i] = id.String()
	}
	return fmt.Sprintf("it would close a cycle of %s: %s", e.Kind, strings.Join(ids, " → "))
}

// Err is the refusal as a 409 problem naming the path.
func (e *CycleError) Err() error {
	return errs.New(errs.Conflict, e.Error(), e.detail()).Problem("relation-cycle", "Relation cycle")
}

// Store is the relations of the tasks of one task store: a subtask_of
// relation moves its parent's subtask counts, which the task store keeps.
type Store struct {
	db    *pg.DB
	tasks *task.Store
}

// NewStore returns the relations over db, whose tasks tasks keeps.
func NewStore(db *pg.DB, tasks *task.Store) (*Store, error) {
	if db == nil || db.Primary == nil || db.Replica == nil || tasks == nil {
		return nil, errors.New("relation: NewStore needs a database and a task store")
	}
	return &Store{db: db, tasks: tasks}, nil
}

// Add relates id to other by kind, writing both tasks' history lines,
// in one transaction. Relations of an acyclic kind are added one at a
// time (a transaction lock of the kind), so two that close a cycle
// together cannot both pass the check. A subtask_of relation counts id
// among other's subtasks, bumping other's version; other, as written, is
// appended to touched.
func (s *Store) Add(ctx context.Context, actor string, id uuid.UUID, kind Kind, other uuid.UUID, touched task.Touched) (Relation, error) {
	if id == other {
		return Relation{}, ErrSelf
	}
	var (
		r       Relation
		parents []task.Task
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		parents = nil
		if kind.acyclic() {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('task_relations:' || $1))`, string(kind)); err != nil {
				return fmt.Errorf("relation: lock: %w", err)
			}
			// A path other → … → task of this kind closes a cycle with
			// task → other.
			const path = `
WITH RECURSIVE walk (id, path) AS (
    SELECT $1::uuid, ARRAY[$1::uuid]
  UNION ALL
    SELECT r.other_id, w.path || r.other_id
    FROM walk w JOIN task_relations r ON r.task_id = w.id AND r.kind = $3
    WHERE r.other_id <> ALL (w.path) AND cardinality(w.path) < 10000
)
SELECT path FROM walk WHERE id = $2 LIMIT 1`
			var p []uuid.UUID
			err := tx.QueryRow(ctx, path, other.String(), id.String(), string(kind)).Scan(&p)
			switch {
			case err == nil:
				return (&CycleError{Kind: kind, Path: append([]uuid.UUID{id}, p...)}).Err()
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("relation: cycle check: %w", err)
			}
		}
		const q = `
INSERT INTO task_relations (task_id, kind, other_id, created_by) VALUES ($1, $2, $3, $4)
RETURNING task_id, kind, other_id, created_by, created_at`
		var k string
		err := tx.QueryRow(ctx, q, id, string(kind), other, actor).Scan(&r.TaskID, &k, &r.OtherID, &r.CreatedBy, &r.CreatedAt)
		r.Kind = Kind(k)
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			switch {
			case pe.Code == "23505" && pe.ConstraintName == "task_relations_one_parent_idx":
				return ErrParent
			case pe.Code == "23505":
				return ErrExists
			case pe.Code == "23503":
				return errs.New(errs.NotFound, "task not found", "")
			}
		}
		if err != nil {
			return fmt.Errorf("relation: add: %w", err)
		}
		if err := history(ctx, tx, actor, activity.RelationAdded, r, false); err != nil {
			return err
		}
		if err := s.event(ctx, tx, actor, r, false); err != nil {
			return err
		}
		if kind == SubtaskOf {
			parents, err = s.tasks.SubtaskLinked(ctx, tx, actor, id, other)
		}
		return err
	})
	if err != nil {
		return Relation{}, err
	}
	s.committed(ctx, r, parents, touched)
	return r, nil
}

// event adds the relation's event to the outbox, keyed by the task it
// was added to, on the task events' topic: a consumer sees it in order
// with that task's other events.
func (s *Store) event(ctx context.Context, tx pgx.Tx, actor string, r Relation, removed bool) error {
	const q = `
SELECT (SELECT project FROM tasks WHERE id = $1), (SELECT project FROM tasks WHERE id = $2)`
	var p, op string
	if err := tx.QueryRow(ctx, q, r.TaskID, r.OtherID).Scan(&p, &op); err != nil {
		return fmt.Errorf("relation: event: %w", err)
	}
	d := events.RelationData{Actor: actor, TaskID: r.TaskID, Kind: string(r.Kind), OtherID: r.OtherID,
		Project: p, OtherProject: op, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt}
	var data events.Data = events.RelationAddedData(d)
	if removed {
		data = events.RelationRemovedData(d)
	}
	ev, err := events.NewTaskEvent(s.tasks.Topic(), r.TaskID, data)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, ev)
}

// committed publishes the events of the change to relation r and of the
// parents it wrote, and hands those to touched.
func (s *Store) committed(ctx context.Context, r Relation, parents []task.Task, touched task.Touched) {
	s.tasks.PublishKey(ctx, r.TaskID)
	s.tasks.Published(ctx, parents, touched)
}

// history writes the relation's line into both tasks' histories: field
// "relation", value {kind, task_id} naming the other task.
func history(ctx context.Context, tx pgx.Tx, actor string, kind activity.Kind, r Relation, removed bool) error {
	for _, side := range []struct{ on, other uuid.UUID }{{r.TaskID, r.OtherID}, {r.OtherID, r.TaskID}} {
		v := []byte(fmt.Sprintf(`{"kind":%q,"task_id":%q,"direction":%q}`, r.Kind, side.other, direction(side.on == r.TaskID)))
		c := activity.Change{Field: "relation", Old: []byte("null"), New: v}
		if removed {
			c.Old, c.New = v, []byte("null")
		}
		if err := activity.Add(ctx, tx, side.on, actor, kind, []activity.Change{c}); err != nil {
			return err
		}
	}
	return nil
}

func direction(outgoing bool) string {
	if outgoing {
		return "outgoing"
	}
	return "incoming"
}

// Remove deletes the relation id <kind> other, with both history lines;
// for subtask_of, other counts one subtask less and is appended to
// touched.
func (s *Store) Remove(ctx context.Context, actor string, id uuid.UUID, kind Kind, other uuid.UUID, touched task.Touched) error {
	var (
		parents []task.Task
		r       Relation
	)
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		parents = nil
		const q = `
DELETE FROM task_relations WHERE task_id = $1 AND kind = $2 AND other_id = $3
RETURNING task_id, kind, other_id, created_by, created_at`
		var k string
		err := tx.QueryRow(ctx, q, id, string(kind), other).Scan(&r.TaskID, &k, &r.OtherID, &r.CreatedBy, &r.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("relation: remove: %w", err)
		}
		r.Kind = Kind(k)
		if err := history(ctx, tx, actor, activity.RelationRemoved, r, true); err != nil {
			return err
		}
		if err := s.event(ctx, tx, actor, r, true); err != nil {
			return err
		}
		if r.Kind == SubtaskOf {
			parents, err = s.tasks.SubtaskUnlinked(ctx, tx, actor, id, other)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.committed(ctx, r, parents, touched)
	return nil
}

// Of returns every relation of task, in both directions: those it was
// added to first, then those naming it, each in creation order.
func (s *Store) Of(ctx context.Context, id uuid.UUID) ([]Relation, error) {
	const q = `
SELECT task_id, kind, other_id, created_by, created_at, true AS outgoing FROM task_relations WHERE task_id = $1
UNION ALL
SELECT task_id, kind, other_id, created_by, created_at, false FROM task_relations WHERE other_id = $1
ORDER BY outgoing DESC, created_at, kind, other_id`
	rows, _ := s.db.Replica.Query(ctx, q, id)
	var out []Relation
	var r Relation
	var k string
	var outgoing bool
	_, err := pgx.ForEachRow(rows, []any{&r.TaskID, &k, &r.OtherID, &r.CreatedBy, &r.CreatedAt, &outgoing}, func() error {
		r.Kind = Kind(k)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("relation: of: %w", err)
	}
	return out, nil
}
