package project

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taskfn/taskfn/shared/auth"
	"github.com/taskfn/taskfn/shared/pg"
)

// Store reads and writes projects and project_members. Everything runs on
// the primary: project reads are rare next to task reads, and a member
// removed must be refused within Resolver's bound, which a lagging
// replica would stretch.
type Store struct {
	db *pg.DB
}

// NewStore returns a Store on db.
func NewStore(db *pg.DB) (*Store, error) {
	if db == nil || db.Primary == nil {
		return nil, errors.New("project: NewStore needs a database")
	}
	return &Store{db: db}, nil
}

const columns = "key, name, description, personal_of IS NOT NULL, created_by, created_at, updated_at, version"

func scan(row pgx.CollectableRow) (Project, error) {
	var p Project
	err := row.Scan(&p.Key, &p.Name, &p.Description, &p.Personal, &p.CreatedBy, &p.CreatedAt, &p.UpdatedAt, &p.Version)
	return p, err
}

func collectOne(rows pgx.Rows, op string) (Project, error) {
	p, err := pgx.CollectOneRow(rows, scan)
	if errors.Is(err, pgx.ErrNoRows) {
		return Project{}, ErrNotFound
	}
	if err != nil {
		return Project{}, fmt.Errorf("project: %s: %w", op, err)
	}
	return p, nil
}

// Create inserts a team project and makes its creator its maintainer, in
// one transaction: a project never exists without someone to manage it.
func (s *Store) Create(ctx context.Context, p Project) (Project, error) {
	var created Project
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		const q = `
INSERT INTO projects (key, name, description, created_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (key) DO NOTHING
RETURNING ` + columns
		rows, _ := tx.Query(ctx, q, p.Key, p.Name, p.Description, p.CreatedBy)
		var err error
		if created, err = collectOne(rows, "create"); err != nil {
			if errors.Is(err, ErrNotFound) {
				return ErrExists
			}
			return err
		}
		const m = `
INSERT INTO project_members (project, subject, role, added_by)
VALUES ($1, $2, 'maintainer', $2)`
		if _, err := tx.Exec(ctx, m, p.Key, p.CreatedBy); err != nil {
			return fmt.Errorf("project: create: maintainer: %w", err)
		}
		return nil
	})
	return created, err
}

// EnsurePersonal creates subject's personal project unless it exists, as
// the tasks_personal_project trigger does on a task's first insert.
func (s *Store) EnsurePersonal(ctx context.Context, subject string) error {
	return EnsurePersonalIn(ctx, s.db.Primary, subject)
}

// Execer is a pool or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// EnsurePersonalIn is EnsurePersonal in the caller's transaction: a task
// moved or created into a personal project not made yet.
func EnsurePersonalIn(ctx context.Context, db Execer, subject string) error {
	if _, err := db.Exec(ctx, ensurePersonalSQL, PersonalKey(subject), subject); err != nil {
		return fmt.Errorf("project: personal: %w", err)
	}
	return nil
}

// QueueEnsurePersonal is EnsurePersonalIn queued on b, a round trip of
// the caller's transaction (pg.InTxBatched).
func QueueEnsurePersonal(b *pgx.Batch, subject string) {
	b.Queue(ensurePersonalSQL, PersonalKey(subject), subject)
}

const ensurePersonalSQL = `
INSERT INTO projects (key, name, personal_of, created_by)
VALUES ($1, 'Personal', $2, $2)
ON CONFLICT DO NOTHING`

// Get returns the project key.
func (s *Store) Get(ctx context.Context, key string) (Project, error) {
	const q = `SELECT ` + columns + ` FROM projects WHERE key = $1`
	rows, _ := s.db.Primary.Query(ctx, q, key)
	return collectOne(rows, "get")
}

// ListQuery is a page of projects in key order.
type ListQuery struct {
	// Keys, unless All, restricts the list to these projects.
	All   bool
	Keys  []string
	After string // resume strictly after this key
	Limit int
}

// List returns up to q.Limit projects after q.After, and whether more follow.
func (s *Store) List(ctx context.Context, q ListQuery) ([]Project, bool, error) {
	if q.Limit < 1 {
		return nil, false, fmt.Errorf("project: list: limit %d", q.Limit)
	}
	if !q.All && len(q.Keys) == 0 {
		return []Project{}, false, nil
	}
	// The primary key serves both forms in order; ANY of the keys is a
	// handful of index probes.
	sql := `SELECT ` + columns + ` FROM projects WHERE key > $1 `
	args := []any{q.After, q.Limit + 1}
	if !q.All {
		sql += `AND key = ANY($3) `
		args = append(args, q.Keys)
	}
	sql += `ORDER BY key LIMIT $2`
	rows, _ := s.db.Primary.Query(ctx, sql, args...)
	items, err := pgx.CollectRows(rows, scan)
	if err != nil {
		return nil, false, fmt.Errorf("project: list: %w", err)
	}
	more := len(items) > q.Limit
	if more {
		items = items[:q.Limit]
	}
	return items, more, nil
}

// Update changes a project under a row lock; change's error aborts it and
// is returned as is. Nothing is written when name and description stay.
func (s *Store) Update(ctx context.Context, key string, change func(cur Project) (Project, error)) (Project, error) {
	var updated Project
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+columns+` FROM projects WHERE key = $1 FOR UPDATE`, key)
		cur, err := collectOne(rows, "update")
		if err != nil {
			return err
		}
		next, err := change(cur)
		if err != nil {
			return err
		}
		if next.Name == cur.Name && next.Description == cur.Description {
			updated = cur
			return nil
		}
		const q = `
UPDATE projects SET name = $2, description = $3, version = version + 1, updated_at = now()
WHERE key = $1
RETURNING ` + columns
		rows, _ = tx.Query(ctx, q, key, next.Name, next.Description)
		updated, err = collectOne(rows, "update")
		return err
	})
	return updated, err
}

// Delete removes an empty team project and its members, if check allows
// it given the current row. A project holding a task is ErrNotEmpty: the
// tasks' foreign key has no ON DELETE, so a task created concurrently
// can never be orphaned either.
func (s *Store) Delete(ctx context.Context, key string, check func(cur Project) error) error {
	return pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT `+columns+` FROM projects WHERE key = $1 FOR UPDATE`, key)
		cur, err := collectOne(rows, "delete")
		if err != nil {
			return err
		}
		if err := check(cur); err != nil {
			return err
		}
		if cur.Personal {
			return ErrPersonal
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projects WHERE key = $1`, key); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation: tasks remain
				return ErrNotEmpty
			}
			return fmt.Errorf("project: delete: %w", err)
		}
		return nil
	})
}

// Memberships returns subject's API-managed roles by project key.
func (s *Store) Memberships(ctx context.Context, subject string) (map[string]auth.ProjectRole, error) {
	const q = `SELECT project, role FROM project_members WHERE subject = $1`
	rows, _ := s.db.Primary.Query(ctx, q, subject)
	out := map[string]auth.ProjectRole{}
	var key, role string
	_, err := pgx.ForEachRow(rows, []any{&key, &role}, func() error {
		r, _ := auth.ParseProjectRole(role) // the table's CHECK admits only known roles
		out[key] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("project: memberships: %w", err)
	}
	return out, nil
}

// MemberChange is the outcome of PutMember: the member as stored and
// whether it is new.
type MemberChange struct {
	Member  Member
	Created bool
}

// PutMember gives subject role in project key, if check allows it given
// the project (locked, so member changes of one project apply one after
// the other and the last-maintainer rule cannot be raced). Demoting the
// last maintainer is ErrLastMaintainer unless force.
func (s *Store) PutMember(ctx context.Context, key, subject string, role auth.ProjectRole, by string, force bool, check func(cur Project) error) (MemberChange, error) {
	var out MemberChange
	err := pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		if _, err := s.lockForMembers(ctx, tx, key, check); err != nil {
			return err
		}
		if role != auth.ProjectMaintainer && !force {
			if err := keepsMaintainer(ctx, tx, key, subject); err != nil {
				return err
			}
		}
		const q = `
INSERT INTO project_members AS m (project, subject, role, added_by)
VALUES ($1, $2, $3, $4)
ON CONFLICT (project, subject) DO UPDATE
    SET role = EXCLUDED.role, added_by = EXCLUDED.added_by, updated_at = now()
    WHERE m.role IS DISTINCT FROM EXCLUDED.role
RETURNING subject, role, added_by, updated_at, xmax = 0`
		err := tx.QueryRow(ctx, q, key, subject, role.String(), by).
			Scan(&out.Member.Subject, &out.Member.Role, &out.Member.AddedBy, &out.Member.UpdatedAt, &out.Created)
		if errors.Is(err, pgx.ErrNoRows) {
			// Already that role: nothing written, the row as it is.
			out.Created = false
			err = tx.QueryRow(ctx, `SELECT subject, role, added_by, updated_at FROM project_members WHERE project = $1 AND subject = $2`, key, subject).
				Scan(&out.Member.Subject, &out.Member.Role, &out.Member.AddedBy, &out.Member.UpdatedAt)
		}
		if err != nil {
			return fmt.Errorf("project: put member: %w", err)
		}
		return nil
	})
	return out, err
}

// DeleteMember removes subject's API-managed role in project key, under the
// same rules as PutMember.
func (s *Store) DeleteMember(ctx context.Context, key, subject string, force bool, check func(cur Project) error) error {
	return pg.InTx(ctx, s.db.Primary, func(tx pgx.Tx) error {
		if _, err := s.lockForMembers(ctx, tx, key, check); err != nil {
			return err
		}
		if !force {
			if err := keepsMaintainer(ctx, tx, key, subject); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM project_members WHERE project = $1 AND subject = $2`, key, subject)
		if err != nil {
			return fmt.Errorf("project: delete member: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrMemberNotFound
		}
		return nil
	})
}

func (s *Store) lockForMembers(ctx context.Context, tx pgx.Tx, key string, check func(cur Project) error) (Project, error) {
	rows, _ := tx.Query(ctx, `SELECT `+columns+` FROM projects WHERE key = $1 FOR UPDATE`, key)
	cur, err := collectOne(rows, "members")
	if err != nil {
		return cur, err
	}
	if err := check(cur); err != nil {
		return cur, err
	}
	if cur.Personal {
		return cur, ErrPersonal
	}
	return cur, nil
}

// keepsMaintainer refuses a change that takes subject's maintainer role
// away when no other API-managed maintainer remains.
func keepsMaintainer(ctx context.Context, tx pgx.Tx, key, subject string) error {
	const q = `
SELECT
    EXISTS (SELECT 1 FROM project_members WHERE project = $1 AND subject = $2 AND role = 'maintainer'),
    EXISTS (SELECT 1 FROM project_members WHERE project = $1 AND subject <> $2 AND role = 'maintainer')`
	var is, others bool
	if err := tx.QueryRow(ctx, q, key, subject).Scan(&is, &others); err != nil {
		return fmt.Errorf("project: maintainers: %w", err)
	}
	if is && !others {
		return ErrLastMaintainer
	}
	return nil
}

// ListMembers returns up to limit API-managed members of key after the
// subject after, in subject order, and whether more follow.
func (s *Store) ListMembers(ctx context.Context, key, after string, limit int) ([]Member, bool, error) {
	const q = `
SELECT subject, role, added_by, updated_at FROM project_members
WHERE project = $1 AND subject > $2
ORDER BY subject
LIMIT $3`
	rows, _ := s.db.Primary.Query(ctx, q, key, after, limit+1)
	items, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Member])
	if err != nil {
		return nil, false, fmt.Errorf("project: list members: %w", err)
	}
	more := len(items) > limit
	if more {
		items = items[:limit]
	}
	return items, more, nil
}
