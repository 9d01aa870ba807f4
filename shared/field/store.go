package field

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/errs"
	"github.com/taskfn/taskfn/shared/pg"
	"github.com/taskfn/taskfn/shared/project"
)

// Errors the store returns; callers use errors.Is.
var (
	ErrNotFound  = errs.New(errs.NotFound, "custom field not found", "")
	ErrNameTaken = errs.New(errs.Conflict, "custom field name taken",
		"the project has a field of this name (names are unique whatever the case)").
		Problem("field-name-taken", "Field name taken")
	ErrTooMany = errs.New(errs.Conflict, "too many custom fields",
		fmt.Sprintf("a project has at most %d fields; delete one first", MaxPerProject)).
		Problem("too-many-fields", "Too many fields")
	ErrVersionMismatch = errs.New(errs.Precondition, "custom field version mismatch",
		"the field has changed since the version named in If-Match; fetch it again")
)

// Store reads and writes custom_fields, and purges deleted definitions'
// values from tasks. Everything runs on the primary: a task write
// validates against the definitions, and one just made must count.
type Store struct {
	db *pg.DB
}

// NewStore returns a Store on db.
func NewStore(db *pg.DB) (*Store, error) {
	if db == nil || db.Primary == nil {
		return nil, errors.New("field: NewStore needs a database")
	}
	return &Store{db: db}, nil
}

const columns = "id, project, name, type, options, required, position, version, created_by, created_at, updated_at"

func scan(row pgx.CollectableRow) (Definition, error) {
	var d Definition
	var opts []byte
	err := row.Scan(&d.ID, &d.Project, &d.Name, &d.Type, &opts, &d.Required, &d.Position, &d.Version, &d.CreatedBy, &d.CreatedAt, &d.UpdatedAt)
	if err != nil {
		return d, err
	}
	d.Options = []Option{}
	if err := json.Unmarshal(opts, &d.Options); err != nil {
		return d, fmt.Errorf("options of field %d: %w", d.ID, err)
	}
	return d, nil
}

// collectOne is the one place pgx.ErrNoRows becomes ErrNotFound.
func collectOne(rows pgx.Rows, op string) (Definition, error) {
	d, err := pgx.CollectOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Definition{}, ErrNotFound
	}
	if err != nil {
		return Definition{}, translate(op, err)
	}
	return d, nil
}

// translate turns a write's unique violation into ErrNameTaken.
func translate(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "custom_fields_project_name_key" {
		return ErrNameTaken
	}
	return fmt.Errorf("field: %s: %w", op, err)
}

// Load returns project's live definitions in position order: an empty Set
// when it has none.
func (s *Store) Load(ctx context.Context, project string) (Set, error) {
	return Load(ctx, s.db.Primary, project)
}

// LoadMany returns the live definitions of each of projects, in one query;
// every project asked for has an entry, an empty Set when it has none.
func (s *Store) LoadMany(ctx context.Context, projects []string) (map[string]Set, error) {
	return LoadMany(ctx, s.db.Primary, projects)
}

// Querier runs a query: a pool, or the transaction a write already holds.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Load is Store.Load on q. A write loads its project's definitions in its
// own transaction: from the pool it would hold one connection and wait
// for a second, and a full pool of such writes waits forever.
func Load(ctx context.Context, q Querier, project string) (Set, error) {
	m, err := LoadMany(ctx, q, []string{project})
	if err != nil {
		return nil, err
	}
	return m[project], nil
}

// LoadMany is Store.LoadMany on q.
func LoadMany(ctx context.Context, q Querier, projects []string) (map[string]Set, error) {
	out := make(map[string]Set, len(projects))
	for _, p := range projects {
		out[p] = Set{}
	}
	if len(projects) == 0 {
		return out, nil
	}
	rows, _ := q.Query(ctx, loadSQL, projects)
	defs, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, fmt.Errorf("field: load: %w", err)
	}
	for _, d := range defs {
		out[d.Project] = append(out[d.Project], d)
	}
	return out, nil
}

// QueueLoad is Load queued on b, the first round trip of a write
// (pg.InTxBatched): into is set when b's results are read.
func QueueLoad(b *pgx.Batch, project string, into *Set) {
	b.Queue(loadSQL, []string{project}).Query(func(rows pgx.Rows) error {
		defs, err := pgx.CollectRows(rows, scan)
		if err != nil {
			return fmt.Errorf("field: load: %w", err)
		}
		*into = defs
		return nil
	})
}

const loadSQL = `
SELECT ` + columns + `
FROM custom_fields
WHERE project = ANY($1) AND deleted_at IS NULL
ORDER BY project, position, id`

// List is Load for the API: a project that does not exist is
// project.ErrNotFound rather than an empty Set (a caller who sees every
// project could otherwise list the fields of any key).
func (s *Store) List(ctx context.Context, key string) (Set, error) {
	set, err := s.Load(ctx, key)
	if err != nil || len(set) > 0 {
		return set, err
	}
	var exists bool
	if err := s.db.Primary.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM projects WHERE key = $1)`, key).Scan(&exists); err != nil {
		return nil, fmt.Errorf("field: list: %w", err)
	}
	if !exists && !strings.HasPrefix(key, project.PersonalPrefix) {
		return nil, project.ErrNotFound
	}
	return set, nil
}

// Get returns the live definition id of project.
func (s *Store) Get(ctx context.Context, project string, id int64) (Definition, error) {
	const q = `SELECT ` + columns + ` FROM custom_fields WHERE project = $1 AND id = $2 AND deleted_at IS NULL`
	rows, _ := s.db.Primary.Query(ctx, q, project, id)
	return collectOne(rows, "get")
}

// Create adds d to its project, last in position order, with new ids for
// its options. The project row is locked first, so two creates of one
// project count one after the other and MaxPerProject cannot be raced
// past; a missing project is project.ErrNotFound.
func (s *Store) Create(ctx context.Context, d Definition) (Definition, error) {
	var created Definition
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		if subject, ok := strings.CutPrefix(d.Project, project.PersonalPrefix); ok {
			// A personal project is made on first use; this may be it.
			if err := project.EnsurePersonalIn(ctx, tx, subject); err != nil {
				return err
			}
		}
		var key string
		err := tx.QueryRow(ctx, `SELECT key FROM projects WHERE key = $1 FOR UPDATE`, d.Project).Scan(&key)
		if errors.Is(err, pgx.ErrNoRows) {
			return project.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("field: create: lock project: %w", err)
		}
		var n, next int
		const c = `
SELECT count(*), coalesce(max(position) + 1, 0)
FROM custom_fields
WHERE project = $1 AND deleted_at IS NULL`
		if err := tx.QueryRow(ctx, c, d.Project).Scan(&n, &next); err != nil {
			return fmt.Errorf("field: create: count: %w", err)
		}
		if n >= MaxPerProject {
			return ErrTooMany
		}
		opts, err := newOptionIDs(d.Options)
		if err != nil {
			return err
		}
		const q = `
INSERT INTO custom_fields (project, name, type, options, required, position, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING ` + columns
		rows, _ := tx.Query(ctx, q, d.Project, d.Name, string(d.Type), string(opts), d.Required, next, d.CreatedBy)
		created, err = collectOne(rows, "create")
		return err
	})
	return created, err
}

// Update changes the live definition id of project under a row lock;
// change's error aborts it and is returned as is. Options change adds
// have no id yet: they are given one. A new Position moves the field there
// (clamped to the list) and renumbers the project's fields. Nothing is
// written when nothing changed.
func (s *Store) Update(ctx context.Context, project string, id int64, change func(cur Definition) (Definition, error)) (Definition, error) {
	var updated Definition
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const sel = `SELECT ` + columns + ` FROM custom_fields WHERE project = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE`
		rows, _ := tx.Query(ctx, sel, project, id)
		cur, err := collectOne(rows, "update")
		if err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		opts, err := newOptionIDs(next.Options)
		if err != nil {
			return err
		}
		moved := next.Position != cur.Position
		if moved {
			if err := reorder(ctx, tx, cur, next.Position); err != nil {
				return err
			}
		}
		oldOpts, _ := json.Marshal(cur.Options)
		if !moved && next.Name == cur.Name && next.Required == cur.Required && string(opts) == string(oldOpts) {
			updated = cur
			return nil
		}
		const q = `
UPDATE custom_fields SET name = $3, options = $4, required = $5, version = version + 1, updated_at = now()
WHERE project = $1 AND id = $2
RETURNING ` + columns
		rows, _ = tx.Query(ctx, q, project, id, next.Name, string(opts), next.Required)
		updated, err = collectOne(rows, "update")
		return err
	})
	return updated, err
}

// reorder moves d to position to among its project's live fields and
// numbers them 0… in their new order. Only the rows whose position
// changes are written; those other than d get a new version too (their
// representation changed).
func reorder(ctx context.Context, tx pgx.Tx, d Definition, to int) error {
	const ids = `SELECT id FROM custom_fields WHERE project = $1 AND deleted_at IS NULL ORDER BY position, id FOR UPDATE`
	rows, _ := tx.Query(ctx, ids, d.Project)
	order, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("field: reorder: %w", err)
	}
	without := make([]int64, 0, len(order))
	for _, id := range order {
		if id != d.ID {
			without = append(without, id)
		}
	}
	to = max(0, min(to, len(without)))
	order = append(without[:to:to], append([]int64{d.ID}, without[to:]...)...)
	// WITH ORDINALITY counts from 1.
	const q = `
UPDATE custom_fields f
SET position = o.n - 1,
    version = CASE WHEN f.id = $2 THEN f.version ELSE f.version + 1 END,
    updated_at = now()
FROM unnest($1::bigint[]) WITH ORDINALITY AS o(id, n)
WHERE f.id = o.id AND f.position <> o.n - 1`
	if _, err := tx.Exec(ctx, q, order, d.ID); err != nil {
		return fmt.Errorf("field: reorder: %w", err)
	}
	return nil
}

// Delete hides the live definition id of project, if check allows it
// given the current row: its values stay in tasks, unseen (Present shows
// only live definitions), until PurgeDeleted removes them.
func (s *Store) Delete(ctx context.Context, project string, id int64, check func(cur Definition) error) error {
	return pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const sel = `SELECT ` + columns + ` FROM custom_fields WHERE project = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE`
		rows, _ := tx.Query(ctx, sel, project, id)
		cur, err := collectOne(rows, "delete")
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		const q = `UPDATE custom_fields SET deleted_at = now(), version = version + 1, updated_at = now() WHERE id = $1`
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("field: delete: %w", err)
		}
		return nil
	})
}

// Purged is what one PurgeDeleted call did.
type Purged struct {
	Values      int64 // task values removed
	Definitions int64 // deleted definitions whose row is gone
}

// PurgeDeleted removes the values of deleted definitions from tasks,
// oldest deletion first, changing at most batch tasks in all, and deletes
// a definition's row once no task of its project carries its key. Values
// below batch means nothing is left to purge (but for rows another
// transaction held: the next run takes them).
//
// It bumps no task's version or updated_at and emits no event: the values
// were hidden when the definition was deleted, and nothing a client can
// see changes. No cache entry needs refreshing either: tasks are shown
// through the live definitions only (Set.Present), and the task cache,
// which holds tasks as they read (values by name), was dropped when the
// definition was deleted (delete-field calls cache.FieldsChanged after
// its commit); removing a key no live definition names changes no
// task's reading. A task moved to another project meanwhile is re-keyed
// by Keep, which drops the key too; ids are never reused, so a stray key
// never shows.
func (s *Store) PurgeDeleted(ctx context.Context, batch int) (Purged, error) {
	var out Purged
	if batch < 1 {
		return out, fmt.Errorf("field: purge: batch %d", batch)
	}
	tried := []int64{}
	for out.Values < int64(batch) {
		const next = `
SELECT id, project FROM custom_fields
WHERE deleted_at IS NOT NULL AND id <> ALL($1)
ORDER BY deleted_at, id
LIMIT 1`
		var id int64
		var key string
		err := s.db.Primary.QueryRow(ctx, next, tried).Scan(&id, &key)
		if errors.Is(err, pgx.ErrNoRows) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("field: purge: %w", err)
		}
		tried = append(tried, id)
		n, gone, err := s.purgeOne(ctx, id, key, batch-int(out.Values))
		out.Values += n
		out.Definitions += gone
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// purgeOne removes up to limit values of the deleted definition id of
// project, then its row if no task carries it any more.
func (s *Store) purgeOne(ctx context.Context, id int64, project string, limit int) (values, gone int64, err error) {
	k := strconv.FormatInt(id, 10)
	// Only rows that carry the key; updated_at and version stay. Rows
	// another transaction holds are left for the next run.
	const q = `
UPDATE tasks SET fields = fields - $2::text
WHERE id IN (
    SELECT id FROM tasks
    WHERE project = $1 AND fields ? $2::text
    LIMIT $3
    FOR UPDATE SKIP LOCKED)`
	tag, err := s.db.Primary.Exec(ctx, q, project, k, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("field: purge values of %d: %w", id, err)
	}
	if tag.RowsAffected() == int64(limit) {
		return tag.RowsAffected(), 0, nil // more may remain
	}
	const del = `
DELETE FROM custom_fields
WHERE id = $1 AND deleted_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM tasks WHERE project = $2 AND fields ? $3::text)`
	dt, err := s.db.Primary.Exec(ctx, del, id, project, k)
	if err != nil {
		return tag.RowsAffected(), 0, fmt.Errorf("field: purge definition %d: %w", id, err)
	}
	return tag.RowsAffected(), dt.RowsAffected(), nil
}

// optionIDs is base32 without padding, lowercase: short, URL- and
// JSON-safe.
var optionIDs = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewOptionID returns a fresh option id, "opt_" and 8 random base32
// characters (40 bits: a clash among a field's 100 options is
// astronomically unlikely, and is checked anyway).
func NewOptionID() (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("field: option id: %w", err)
	}
	return "opt_" + strings.ToLower(optionIDs.EncodeToString(b[:])), nil
}

// newOptionIDs gives the options without an id a fresh one and returns
// them as the options column stores them. Callers pass it as a string:
// in exec mode (behind PgBouncer) pgx sends []byte as bytea text, which
// jsonb refuses.
func newOptionIDs(opts []Option) ([]byte, error) {
	out := make([]Option, len(opts))
	copy(out, opts)
	for i := range out {
		for out[i].ID == "" {
			id, err := NewOptionID()
			if err != nil {
				return nil, err
			}
			if !containsID(out, id) {
				out[i].ID = id
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("field: options: %w", err)
	}
	return b, nil
}

func containsID(opts []Option, id string) bool {
	for _, o := range opts {
		if o.ID == id {
			return true
		}
	}
	return false
}
