package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskfn/taskfn/shared/activity"
	"github.com/taskfn/taskfn/shared/events"
	"github.com/taskfn/taskfn/shared/field"
	"github.com/taskfn/taskfn/shared/outbox"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
)

// Store reads and writes the tasks table. Writes, and the reads inside
// them, use the primary; Get and List use the replica, which may lag
// behind a write just made.
//
// Every write adds its events to the outbox in its own transaction (see
// events.go), and after commit publishes them at once if the Store has a
// publisher; otherwise, or if that fails, relay-outbox publishes them.
// The write methods take the actor, the subject of who makes the change,
// which the events carry; "" is the system.
type Store struct {
	db *pg.DB
	// prepares: the replica pool prepares statements (cache_statement),
	// which List avoids.
	prepares bool
	topic    string           // of task events
	pub      outbox.Publisher // nil: events wait for the relay
	also     pg.Also[Task]    // run in each Create's and Update's transaction
	// fields loads projects' custom field definitions (fields.go).
	fields *field.Store
	// refuseDrops: a move that would drop custom field values is a 422
	// rather than done (PATCH ?drop_fields=false).
	refuseDrops bool
	// sizes caches statusSizes, by project.
	sizes *expirable.LRU[string, map[Status]int]
}

// RefusingDrops returns a copy of s whose Update refuses to move a task
// to a project that does not define all of its custom fields, naming
// them, rather than dropping their values. s itself is unchanged.
func (s *Store) RefusingDrops() *Store {
	cp := *s
	cp.refuseDrops = true
	return &cp
}

// Option configures a Store.
type Option func(*Store)

// WithPublisher makes writes publish their events right after commit.
// Best effort: a failure is logged and the events wait for the relay; it
// never fails the write, which has committed.
func WithPublisher(p outbox.Publisher) Option { return func(s *Store) { s.pub = p } }

// WithTopic sets the Kafka topic of task events (default
// events.DefaultTasksTopic).
func WithTopic(topic string) Option { return func(s *Store) { s.topic = topic } }

// Also returns a copy of s whose Create and Update also run also in their
// transaction, after the write, with the task as written (for an update
// that changed nothing, as it is): what commits only with the write, such
// as an ingested command's receipt. s itself is unchanged.
func (s *Store) Also(also pg.Also[Task]) *Store {
	cp := *s
	cp.also = also
	return &cp
}

// NewStore returns a Store on db.
func NewStore(db *pg.DB, opts ...Option) (*Store, error) {
	if db == nil || db.Primary == nil || db.Replica == nil {
		return nil, errors.New("task: NewStore needs a database")
	}
	mode := db.Replica.Config().ConnConfig.DefaultQueryExecMode
	fields, err := field.NewStore(db)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, prepares: mode == pgx.QueryExecModeCacheStatement, topic: events.DefaultTasksTopic, fields: fields,
		sizes: expirable.NewLRU[string, map[Status]int](sizeProjects, nil, sizeTTL)}
	for _, o := range opts {
		o(s)
	}
	if s.topic == "" {
		return nil, errors.New("task: NewStore: empty events topic")
	}
	return s, nil
}

// Columns are what ScanRows reads, in its order — keep the two in step.
// The generated search column is left out.
const Columns = "id, project, title, description, status, priority, due_at, owner_id, assignee_id, labels, subtasks_total, subtasks_done, archived_at, recurrence, recurrence_tz, reminders, series_id, fields, created_at, updated_at, version"

// ScanRows returns a function that reads rows of Columns, for
// pgx.CollectRows and CollectOneRow; it reuses its scan targets from one
// row to the next, so use one per query. It is written out rather than
// pgx.RowToStructByPos, whose reflection per row was a tenth of the list
// route's CPU, and it scans into pgx's own types and plain strings, which
// pgx decodes directly: uuid.UUID's sql.Scanner made pgx decode the id as
// text and parse it again, and named string types and pointers go through
// reflection.
func ScanRows() pgx.RowToFunc[Task] {
	var (
		t                Task
		id               pgtype.UUID
		status, priority pgtype.DriverBytes // valid until the next row: interned
		due              pgtype.Timestamptz
		assignee         pgtype.Text
		archived         pgtype.Timestamptz
		rule             pgtype.Text
		tz               pgtype.DriverBytes
		series           pgtype.UUID
		fields           pgtype.DriverBytes // the jsonb's text, valid until the next row
	)
	dest := []any{&id, &t.Project, &t.Title, &t.Description, &status, &priority, &due,
		&t.OwnerID, &assignee, &t.Labels, &t.Subtasks.Total, &t.Subtasks.Done, &archived,
		&rule, &tz, &t.Reminders, &series, &fields, &t.CreatedAt, &t.UpdatedAt, &t.Version}
	return func(row pgx.CollectableRow) (Task, error) {
		t.Labels, t.Reminders = nil, nil // the targets pgx would append to
		if err := row.Scan(dest...); err != nil {
			return Task{}, err
		}
		out := t
		out.ID = id.Bytes
		out.Status, out.Priority = intern(status, Statuses), intern(priority, Priorities)
		if due.Valid {
			d := due.Time
			out.DueAt = &d
		}
		if assignee.Valid {
			a := assignee.String
			out.AssigneeID = &a
		}
		if archived.Valid {
			a := archived.Time
			out.Archived, out.ArchivedAt = true, &a
		}
		if rule.Valid {
			r := rule.String
			out.Recurrence = &r
		}
		out.RecurrenceTZ = intern(tz, commonZones)
		if series.Valid {
			s := uuid.UUID(series.Bytes)
			out.SeriesID = &s
		}
		// Most tasks have no values: "{}" costs no map. The id-keyed form
		// only; the store renders Fields through the live definitions.
		out.Fields, out.StoredFields, out.FieldsPatch, out.DroppedFields = nil, nil, nil, nil
		if len(fields) > 2 {
			if err := json.Unmarshal(fields, &out.StoredFields); err != nil {
				return Task{}, fmt.Errorf("task: fields: %w", err)
			}
		}
		return out, nil
	}
}

// commonZones are interned when scanned: nearly every task has UTC.
var commonZones = []string{DefaultRecurrenceTZ}

// intern returns the constant equal to b, so no string is allocated per
// row for a value from a closed set.
func intern[S ~string](b []byte, constants []S) S {
	for _, c := range constants {
		if string(c) == string(b) {
			return c
		}
	}
	return S(b)
}

// Create inserts t and returns the row as stored: created_at, updated_at
// and version come from the database. A zero ID gets a new UUIDv7, which
// sorts by creation time and so keeps primary key inserts local. Its event
// is task.created, made by actor. An empty Project is the owner's
// personal project; one that does not exist is ErrNoProject.
func (s *Store) Create(ctx context.Context, actor string, t Task) (Task, error) {
	if t.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			return Task{}, fmt.Errorf("task: create: %w", err)
		}
		t.ID = id
	}
	var (
		created Task
		defs    field.Set
		evs     []events.Event
	)
	// Three round trips: BEGIN with the definitions' read and (for a task
	// given no custom field values, which nearly all are) the insert; the
	// history, the outbox and the commit check; COMMIT. The insert goes
	// before its fields are checked because with no values given there is
	// nothing to store either way: the check can only refuse, and then
	// the transaction rolls back.
	first := &pgx.Batch{}
	queueEnsurePersonal(first, t.Project)
	field.QueueLoad(first, fieldsKey(t), &defs)
	inserted := t.FieldsPatch == nil
	if inserted {
		first.Queue(insertSQL, insertArgs(t)...).Query(func(rows pgx.Rows) error {
			return scanCreated(rows, &created)
		})
	}
	err := pg.InTxBatched(ctx, s.db.Primary, first, func(tx pgx.Tx, tail *pgx.Batch) error {
		if err := createFields(defs, &t); err != nil {
			return err
		}
		if !inserted {
			rows, _ := tx.Query(ctx, insertSQL, insertArgs(t)...)
			if err := scanCreated(rows, &created); err != nil {
				return err
			}
		}
		created.Fields = t.Fields
		if err := activity.Queue(tail, created.ID, actor, activity.Created, activityChanges(nil, created)); err != nil {
			return err
		}
		var err error
		evs, err = s.queueEvents(tail, created.ID, events.TaskCreatedData{Actor: actor, Task: created.Snapshot()})
		return s.also.Run(ctx, tx, created, err)
	})
	if err != nil {
		return Task{}, err
	}
	// A new task's key has no earlier events: they need no lock.
	outbox.PublishFirst(ctx, s.db.Primary, s.pub, evs)
	return created, nil
}

const insertSQL = `
INSERT INTO tasks (id, title, description, status, priority, due_at, owner_id, assignee_id, labels, project, recurrence, recurrence_tz, reminders, fields)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
RETURNING ` + Columns

func insertArgs(t Task) []any {
	return []any{t.ID, t.Title, t.Description, t.Status, t.Priority, t.DueAt, t.OwnerID, t.AssigneeID, nonNil(t.Labels), projectArg(t.Project),
		t.Recurrence, zoneArg(t.RecurrenceTZ), nonNil(t.Reminders), storedArg(t.StoredFields)}
}

func scanCreated(rows pgx.Rows, into *Task) error {
	created, err := pgx.CollectOneRow(rows, ScanRows())
	if err != nil {
		return noProject(fmt.Errorf("task: create: %w", err))
	}
	*into = created
	return nil
}

// Get returns the task with id, read from the replica.
func (s *Store) Get(ctx context.Context, id uuid.UUID) (Task, error) {
	t, err := get(ctx, s.db.Replica, id)
	if err != nil {
		return Task{}, err
	}
	return s.presentOne(ctx, s.db.Replica, t)
}

// GetPrimary is Get on the primary, for reads that must see every
// acknowledged write even while the replica lags (the task cache's
// fallback when Redis cannot vouch for an entry).
func (s *Store) GetPrimary(ctx context.Context, id uuid.UUID) (Task, error) {
	t, err := get(ctx, s.db.Primary, id)
	if err != nil {
		return Task{}, err
	}
	return s.presentOne(ctx, s.db.Primary, t)
}

func get(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (Task, error) {
	const q = `
SELECT ` + Columns + `
FROM tasks
WHERE id = $1
  AND deleted_at IS NULL`
	rows, _ := pool.Query(ctx, q, id)
	return collectOne(rows, "get")
}

// Update changes a task under a row lock, so concurrent updates apply one
// after the other and change always sees the current row. change's error
// aborts the update and is returned as is. Only the mutable fields of the
// task change returns are written (project, title, description, status,
// priority, due_at, assignee_id, labels); when none differs from the current row
// nothing is written and the current row is returned with its version.
// Its events, made by actor: task.updated for every change, then
// task.status_changed and task.assigned when those fields changed; a no-op
// update has none.
//
// A subtask closed or reopened moves its parent's counts in the same
// transaction; the parent, at its new version, is appended to touched.
func (s *Store) Update(ctx context.Context, actor string, id uuid.UUID, change func(cur Task) (Task, error), touched ...Touched) (Task, error) {
	var (
		updated Task
		wrote   bool
		parents []Task
		evs     []events.Event
		waiting bool
	)
	// Four round trips: BEGIN with the row's lock; the write; the history,
	// the outbox and the commit check; COMMIT.
	var locked Task
	first := &pgx.Batch{}
	first.Queue(lockSQL, id).Query(func(rows pgx.Rows) error {
		var err error
		locked, err = collectOne(rows, "update")
		return err
	})
	err := pg.InTxBatched(ctx, s.db.Primary, first, func(tx pgx.Tx, tail *pgx.Batch) error {
		parents = nil
		cur, err := s.presentOne(ctx, tx, locked)
		if err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		if err := s.applyFields(ctx, tx, &cur, &next); err != nil {
			return err
		}
		if SameContent(cur, next) {
			updated = cur
			return s.also.Run(ctx, tx, cur, nil)
		}
		if next.Project != cur.Project {
			if err := ensurePersonal(ctx, tx, next.Project); err != nil {
				return err
			}
		}
		if updated, err = writeTask(ctx, tx, id, next); err != nil {
			return err
		}
		updated.Fields, updated.DroppedFields = next.Fields, next.DroppedFields
		wrote = true
		if err := activity.Queue(tail, id, actor, activity.Updated, activityChanges(&cur, updated)); err != nil {
			return err
		}
		// Whether events of the task wait from before this change: the row
		// lock orders the task's writers, so if none do, these are the
		// first and go out without the publishers' lock. Without a
		// publisher nothing is published here: no need to know.
		if s.pub != nil {
			outbox.QueueWaiting(tail, id.String(), &waiting)
		}
		if evs, err = s.queueEvents(tail, id, changeData(actor, cur, updated)...); err != nil {
			return err
		}
		if d := closing(cur.Status, updated.Status); d != 0 {
			parents, err = s.moveParents(ctx, tx, actor, []uuid.UUID{id}, func(uuid.UUID) (int32, int32) { return 0, d })
		}
		return s.also.Run(ctx, tx, updated, err)
	})
	if err != nil {
		return Task{}, err
	}
	switch {
	case wrote && waiting:
		s.publish(ctx, id)
	case wrote:
		outbox.PublishFirst(ctx, s.db.Primary, s.pub, evs)
	}
	s.report(ctx, parents, touched)
	return updated, nil
}

// moveParents applies to the parents of children (locked) the deltas
// delta gives for each child.
func (s *Store) moveParents(ctx context.Context, tx pgx.Tx, actor string, children []uuid.UUID, delta func(child uuid.UUID) (total, done int32)) ([]Task, error) {
	of, err := parentsOf(ctx, tx, children)
	if err != nil || len(of) == 0 {
		return nil, err
	}
	p := progress{}
	for child, parent := range of {
		t, d := delta(child)
		p.add(parent, t, d)
	}
	return s.apply(ctx, tx, actor, p)
}

// writeTask writes next's mutable fields to task id, bumping its version.
func writeTask(ctx context.Context, tx pgx.Tx, id uuid.UUID, next Task) (Task, error) {
	const q = `
UPDATE tasks
SET title = $2,
    description = $3,
    status = $4,
    priority = $5,
    due_at = $6,
    assignee_id = $7,
    labels = $8,
    project = $9,
    archived_at = CASE WHEN $10 THEN coalesce(archived_at, now()) END,
    recurrence = $11,
    recurrence_tz = $12,
    reminders = $13,
    fields = $14::jsonb,
    version = version + 1,
    updated_at = now()
WHERE id = $1
RETURNING ` + Columns
	rows, _ := tx.Query(ctx, q,
		id, next.Title, next.Description, next.Status, next.Priority, next.DueAt, next.AssigneeID, nonNil(next.Labels), next.Project, next.Archived,
		next.Recurrence, zoneArg(next.RecurrenceTZ), nonNil(next.Reminders), storedArg(next.StoredFields))
	updated, err := collectOne(rows, "update")
	return updated, noProject(err)
}

// noProject turns the project foreign key's violation into ErrNoProject:
// the project was deleted (or never existed) between the caller's check
// and the write.
func noProject(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" && pe.ConstraintName == "tasks_project_fkey" {
		return ErrNoProject
	}
	return err
}

func lockTask(ctx context.Context, tx pgx.Tx, id uuid.UUID, op string) (Task, error) {
	rows, _ := tx.Query(ctx, lockSQL, id)
	return collectOne(rows, op)
}

const lockSQL = `
SELECT ` + Columns + `
FROM tasks
WHERE id = $1
  AND deleted_at IS NULL
FOR UPDATE`

// collectOne scans one task, the one place pgx.ErrNoRows becomes ErrNotFound.
func collectOne(rows pgx.Rows, op string) (Task, error) {
	t, err := pgx.CollectOneRow(rows, ScanRows())
	if errors.Is(err, pgx.ErrNoRows) {
		return Task{}, ErrNotFound
	}
	if err != nil {
		return Task{}, fmt.Errorf("task: %s: %w", op, err)
	}
	return t, nil
}

// ensurePersonal makes the personal project key names, if it does, on its
// first use: a personal project exists once anything is filed in it.
// Team projects are made only through the project API.
func ensurePersonal(ctx context.Context, tx pgx.Tx, key string) error {
	if sub, ok := personalOf(key); ok {
		return project.EnsurePersonalIn(ctx, tx, sub)
	}
	return nil
}

// queueEnsurePersonal is ensurePersonal queued on b, a write's first
// round trip.
func queueEnsurePersonal(b *pgx.Batch, key string) {
	if sub, ok := personalOf(key); ok {
		project.QueueEnsurePersonal(b, sub)
	}
}

// personalOf is the subject whose personal project key names, if it does.
func personalOf(key string) (string, bool) {
	sub, ok := strings.CutPrefix(key, project.PersonalPrefix)
	return sub, ok && sub != ""
}

// projectArg sends "" as NULL: the tasks_personal_project trigger then
// files the task in its owner's personal project, creating that on first
// use, in the insert's own statement.
func projectArg(key string) *string {
	if key == "" {
		return nil
	}
	return &key
}

// zoneArg is a task's zone as stored: "" (a Task built in code, not by
// Draft) is the default.
func zoneArg(tz string) string {
	if tz == "" {
		return DefaultRecurrenceTZ
	}
	return tz
}

// nonNil turns nil into an empty slice: pgx sends nil as NULL, and
// labels and reminders are NOT NULL.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// GetMany returns the tasks of ids that exist, from the replica, by id.
func (s *Store) GetMany(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]Task, error) {
	const q = `SELECT ` + Columns + ` FROM tasks WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL`
	rows, _ := s.db.Replica.Query(ctx, q, uuidStrings(ids))
	found, err := pgx.CollectRows(rows, ScanRows())
	if err != nil {
		return nil, fmt.Errorf("task: get many: %w", err)
	}
	if err := s.present(ctx, s.db.Replica, found); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]Task, len(found))
	for _, t := range found {
		out[t.ID] = t
	}
	return out, nil
}
