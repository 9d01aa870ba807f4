// Package activity is a task's history: who changed what and when, one
// entry a change, written by the task's writers in the transaction of the
// change (so the two commit or fail together), and read newest first. It
// is the one place with SQL for the task_activity table.
package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/pg"
)

// Kind is what happened.
type Kind string

const (
	Created         Kind = "created"
	Updated         Kind = "updated"
	CommentAdded    Kind = "comment_added"
	CommentRemoved  Kind = "comment_removed"
	RelationAdded   Kind = "relation_added"
	RelationRemoved Kind = "relation_removed"
	Trashed         Kind = "trashed"
	Restored        Kind = "restored"
)

// Change is one field's change; values are as the task's JSON shows them,
// null included.
type Change struct {
	Field string          `json:"field"`
	Old   json.RawMessage `json:"old"`
	New   json.RawMessage `json:"new"`
}

// Entry is one line of a task's history.
type Entry struct {
	ID      uuid.UUID `json:"id"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Kind    Kind      `json:"kind"`
	Changes []Change  `json:"changes"`
}

// Add writes entries of kind for task id by actor, in tx.
func Add(ctx context.Context, tx pgx.Tx, taskID uuid.UUID, actor string, kind Kind, changes []Change) error {
	args, err := addArgs(taskID, actor, kind, changes)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, addSQL, args...); err != nil {
		return fmt.Errorf("activity: add: %w", err)
	}
	return nil
}

// Queue is Add queued on b, the tail of a write's transaction
// (pg.InTxBatched): the entry goes with the write's last round trip.
func Queue(b *pgx.Batch, taskID uuid.UUID, actor string, kind Kind, changes []Change) error {
	args, err := addArgs(taskID, actor, kind, changes)
	if err != nil {
		return err
	}
	b.Queue(addSQL, args...)
	return nil
}

const addSQL = `
INSERT INTO task_activity (id, task_id, actor, kind, changes)
VALUES ($1, $2, $3, $4, $5)`

func addArgs(taskID uuid.UUID, actor string, kind Kind, changes []Change) ([]any, error) {
	if changes == nil {
		changes = []Change{}
	}
	b, err := json.Marshal(changes)
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("activity: %w", err)
	}
	// changes as text: behind PgBouncer (exec mode) a []byte goes as bytea.
	return []any{id, taskID, actor, string(kind), string(b)}, nil
}

// Line is one entry to write with AddMany.
type Line struct {
	TaskID  uuid.UUID
	Actor   string
	Kind    Kind
	Changes []Change
}

// AddMany is Add for several lines, in one statement (a bulk change).
func AddMany(ctx context.Context, tx pgx.Tx, lines []Line) error {
	if len(lines) == 0 {
		return nil
	}
	// ids as text: a []uuid.UUID has no text form, which the exec mode
	// behind PgBouncer needs.
	ids, tasks := make([]string, len(lines)), make([]string, len(lines))
	actors, kinds, changes := make([]string, len(lines)), make([]string, len(lines)), make([]string, len(lines))
	for i, l := range lines {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("activity: %w", err)
		}
		c := l.Changes
		if c == nil {
			c = []Change{}
		}
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("activity: %w", err)
		}
		ids[i], tasks[i], actors[i], kinds[i], changes[i] = id.String(), l.TaskID.String(), l.Actor, string(l.Kind), string(b)
	}
	const q = `
INSERT INTO task_activity (id, task_id, actor, kind, changes)
SELECT i, t, a, k, c::jsonb FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) AS x(i, t, a, k, c)`
	if _, err := tx.Exec(ctx, q, ids, tasks, actors, kinds, changes); err != nil {
		return fmt.Errorf("activity: add %d: %w", len(lines), err)
	}
	return nil
}

// Store reads task histories from the replica.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on db's replica.
func NewStore(db *pg.DB) (*Store, error) {
	if db == nil || db.Replica == nil {
		return nil, errors.New("activity: NewStore needs a database")
	}
	return &Store{pool: db.Replica}, nil
}

// List returns up to limit entries of task id older than after (uuid.Nil:
// from the newest), newest first, and whether more follow.
func (s *Store) List(ctx context.Context, taskID, after uuid.UUID, limit int) ([]Entry, bool, error) {
	q := `
SELECT id, at, actor, kind, changes FROM task_activity
WHERE task_id = $1`
	args := []any{taskID, limit + 1}
	if after != uuid.Nil {
		q += ` AND id < $3`
		args = append(args, after)
	}
	q += `
ORDER BY id DESC
LIMIT $2`
	rows, _ := s.pool.Query(ctx, q, args...)
	var (
		e       Entry
		kind    string
		changes []byte
	)
	var out []Entry
	_, err := pgx.ForEachRow(rows, []any{&e.ID, &e.At, &e.Actor, &kind, &changes}, func() error {
		e.Kind = Kind(kind)
		e.Changes = nil
		if err := json.Unmarshal(changes, &e.Changes); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("activity: list: %w", err)
	}
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	if out == nil {
		out = []Entry{}
	}
	return out, more, nil
}
