// Package comment is comments on tasks: the record, its validation and
// its PostgreSQL store (the one place with SQL for the comments table).
// Adding or removing a comment writes the task's history line and the
// comment's event in the same transaction.
package comment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/mergepatch"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/textfield"
)

// MaxBody bounds a comment's Markdown text; the table's CHECK repeats it.
const MaxBody = 10_000

// Comment is one row of the comments table, and the API's JSON.
type Comment struct {
	ID        uuid.UUID  `json:"id"`
	TaskID    uuid.UUID  `json:"task_id"`
	Author    string     `json:"author"`
	Body      string     `json:"body"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	EditedAt  *time.Time `json:"edited_at"`
	Version   int64      `json:"version"`
}

// Snapshot is c as its events carry it.
func (c Comment) Snapshot() events.CommentSnapshot { return events.CommentSnapshot(c) }

var (
	ErrNotFound        = errs.New(errs.NotFound, "comment not found", "")
	ErrVersionMismatch = errs.New(errs.Precondition, "comment version mismatch",
		"the comment has changed since the version named in If-Match; fetch it again")
)

// ParseBody reads {"body": "..."}: Markdown, 1 to MaxBody characters
// (tabs and newlines allowed, other control characters not).
func ParseBody(b []byte) (string, error) {
	members, err := mergepatch.Object(b)
	if err != nil {
		return "", err
	}
	var body mergepatch.Field[string]
	for _, m := range members {
		switch m.Name {
		case "body":
			if err := mergepatch.Decode(m.Raw, &body); err != nil {
				return "", errs.Validation(errs.FieldError{Field: "body", Detail: err.Error()})
			}
		case "id", "task_id", "author", "created_at", "updated_at", "edited_at", "version":
			return "", errs.Validation(errs.FieldError{Field: m.Name, Detail: "is read-only"})
		default:
			return "", errs.Syntax(fmt.Sprintf("unknown field %q", m.Name))
		}
	}
	problem := ""
	switch {
	case !body.Set || body.Null:
		problem = "is required"
	case strings.TrimSpace(body.Value) == "":
		problem = "must not be blank"
	default:
		problem = textfield.Text(body.Value, MaxBody)
	}
	if problem != "" {
		return "", errs.Validation(errs.FieldError{Field: "body", Detail: problem})
	}
	return body.Value, nil
}

// Store reads and writes comments; writes add their events to the outbox
// and publish them after commit when a publisher is set.
type Store struct {
	db    *pg.DB
	topic string
	pub   outbox.Publisher
	also  pg.Also[Comment] // run in each Create's transaction
}

// Also returns a copy of s whose Create also runs also in its
// transaction, after the insert, with the comment as stored (an ingested
// command's receipt). s itself is unchanged.
func (s *Store) Also(also pg.Also[Comment]) *Store {
	cp := *s
	cp.also = also
	return &cp
}

// NewStore returns a Store on db whose events go to topic (the tasks
// topic: a comment's events are keyed by its task, so they stay in order
// with the task's own), published by pub (nil: by relay-outbox).
func NewStore(db *pg.DB, topic string, pub outbox.Publisher) (*Store, error) {
	if db == nil || db.Primary == nil || db.Replica == nil {
		return nil, errors.New("comment: NewStore needs a database")
	}
	if topic == "" {
		topic = events.DefaultTasksTopic
	}
	return &Store{db: db, topic: topic, pub: pub}, nil
}

const columns = "id, task_id, author, body, created_at, updated_at, edited_at, version"

func scan(row pgx.CollectableRow) (Comment, error) {
	var c Comment
	err := row.Scan(&c.ID, &c.TaskID, &c.Author, &c.Body, &c.CreatedAt, &c.UpdatedAt, &c.EditedAt, &c.Version)
	return c, err
}

func collectOne(rows pgx.Rows, op string) (Comment, error) {
	c, err := pgx.CollectOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Comment{}, ErrNotFound
	}
	if err != nil {
		return Comment{}, fmt.Errorf("comment: %s: %w", op, err)
	}
	return c, nil
}

// event adds the comment event of d to the outbox, keyed by the task.
func (s *Store) event(ctx context.Context, tx pgx.Tx, taskID uuid.UUID, d events.Data) error {
	ev, err := events.NewTaskEvent(s.topic, taskID, d)
	if err != nil {
		return err
	}
	return outbox.Add(ctx, tx, ev)
}

func (s *Store) publish(ctx context.Context, taskID uuid.UUID) {
	outbox.PublishCommitted(ctx, s.db.Primary, s.pub, taskID.String())
}

// Create adds a comment by author to task (as the caller saw it, for the
// event), with its history line and event, which names mentioned (the
// subjects its mentions notify; the row remembers them). A task deleted
// meanwhile is ErrTaskGone.
func (s *Store) Create(ctx context.Context, author string, task events.TaskSnapshot, body string, mentioned []string) (Comment, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Comment{}, fmt.Errorf("comment: %w", err)
	}
	var c Comment
	err = pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const q = `
INSERT INTO comments (id, task_id, author, body, mentioned) VALUES ($1, $2, $3, $4, $5)
RETURNING ` + columns
		rows, _ := tx.Query(ctx, q, id, task.ID, author, body, nonNil(mentioned))
		var err error
		if c, err = collectOne(rows, "create"); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23503" { // the task is gone
				return ErrTaskGone
			}
			return err
		}
		if err := activity.Add(ctx, tx, task.ID, author, activity.CommentAdded, commentChange(nil, &c)); err != nil {
			return err
		}
		err = s.event(ctx, tx, task.ID, events.CommentCreatedData{Actor: author, Comment: c.Snapshot(), Task: task, Mentioned: mentioned})
		return s.also.Run(ctx, tx, c, err)
	})
	if err != nil {
		return Comment{}, err
	}
	s.publish(ctx, task.ID)
	return c, nil
}

// nonNil: pgx sends a nil slice as NULL, and mentioned is NOT NULL.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ErrTaskGone: the task was deleted while the comment was being added.
var ErrTaskGone = errs.New(errs.NotFound, "task not found", "")

// commentChange is the history line's change: the comment's id appearing
// or going.
func commentChange(old, cur *Comment) []activity.Change {
	val := func(c *Comment) []byte {
		if c == nil {
			return []byte("null")
		}
		return []byte(`"` + c.ID.String() + `"`)
	}
	return []activity.Change{{Field: "comment", Old: val(old), New: val(cur)}}
}

// Get returns comment id, from the replica.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (Comment, error) {
	rows, _ := s.db.Replica.Query(ctx, `SELECT `+columns+` FROM comments WHERE id = $1`, id)
	return collectOne(rows, "get")
}

// List returns up to limit comments of task after the comment after
// (uuid.Nil: from the first), oldest first, and whether more follow.
func (s *Store) List(ctx context.Context, taskID, after uuid.UUID, limit int) ([]Comment, bool, error) {
	const q = `
SELECT ` + columns + ` FROM comments
WHERE task_id = $1 AND id > $2
ORDER BY id
LIMIT $3`
	rows, _ := s.db.Replica.Query(ctx, q, taskID, after, limit+1)
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, false, fmt.Errorf("comment: list: %w", err)
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	if items == nil {
		items = []Comment{}
	}
	return items, more, nil
}

// Update sets the body of comment id under a row lock if check, given the
// current row, allows it; the same body writes nothing. Its event carries
// task, the comment's task as the caller saw it, and those of mentioned
// (the subjects the new body's mentions reach) the comment has not
// notified before, whom the row then remembers too: a mention notifies
// once per comment, however often an edit removes and restores it.
func (s *Store) Update(ctx context.Context, actor string, id uuid.UUID, task events.TaskSnapshot, body string, mentioned []string, check func(cur Comment) error) (Comment, error) {
	var (
		c     Comment
		fresh []string
	)
	wrote := false
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		cur, err := lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		if cur.Body == body {
			c = cur
			return nil
		}
		// Those of mentioned not yet told, from the row under its lock,
		// so two edits cannot both tell the same person.
		var told []string
		if err := tx.QueryRow(ctx, `SELECT mentioned FROM comments WHERE id = $1`, id).Scan(&told); err != nil {
			return fmt.Errorf("comment: update: %w", err)
		}
		fresh = nil
		for _, m := range mentioned {
			if !slices.Contains(told, m) {
				fresh = append(fresh, m)
			}
		}
		const q = `
UPDATE comments
SET body = $2,
    mentioned = mentioned || $3::text[],
    edited_at = now(),
    updated_at = now(),
    version = version + 1
WHERE id = $1
RETURNING ` + columns
		rows, _ := tx.Query(ctx, q, id, body, nonNil(fresh))
		if c, err = collectOne(rows, "update"); err != nil {
			return err
		}
		wrote = true
		return s.event(ctx, tx, cur.TaskID, events.CommentUpdatedData{Actor: actor, Comment: c.Snapshot(), Task: task, Mentioned: fresh})
	})
	if err != nil {
		return Comment{}, err
	}
	if wrote {
		s.publish(ctx, c.TaskID)
	}
	return c, nil
}

// Delete removes comment id if check allows it, with its history line and
// event.
func (s *Store) Delete(ctx context.Context, actor string, id uuid.UUID, task events.TaskSnapshot, check func(cur Comment) error) error {
	var taskID uuid.UUID
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		cur, err := lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		taskID = cur.TaskID
		if _, err := tx.Exec(ctx, `DELETE FROM comments WHERE id = $1`, id); err != nil {
			return fmt.Errorf("comment: delete: %w", err)
		}
		if err := activity.Add(ctx, tx, cur.TaskID, actor, activity.CommentRemoved, commentChange(&cur, nil)); err != nil {
			return err
		}
		return s.event(ctx, tx, cur.TaskID, events.CommentDeletedData{Actor: actor, Comment: cur.Snapshot(), Task: task})
	})
	if err != nil {
		return err
	}
	s.publish(ctx, taskID)
	return nil
}

func lock(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Comment, error) {
	rows, _ := tx.Query(ctx, `SELECT `+columns+` FROM comments WHERE id = $1 FOR UPDATE`, id)
	return collectOne(rows, "lock")
}
