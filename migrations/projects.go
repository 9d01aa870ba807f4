package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pressly/goose/v3"
)

// projectsVersion puts every task into a project. It is Go rather than SQL
// because it must not hold writes to tasks off for more than a second on a
// table of millions of rows, which takes steps a SQL file cannot order:
//
//  1. New tables, and on tasks only changes that need no scan: a nullable
//     column, a trigger, a NOT VALID foreign key. They take a brief lock on
//     tasks; lock_timeout (1 s) bounds how long writers queue behind it
//     when a long transaction holds the table, and the step is retried.
//  2. The backfill in batches of backfillBatch rows, each its own short
//     transaction, walking the primary key: no row is locked for longer
//     than one batch, and no batch rereads what the previous ones did.
//  3. The project index built CONCURRENTLY, the foreign key validated
//     (neither blocks writes), then NOT NULL proven by a validated CHECK
//     so that SET NOT NULL itself needs no scan under its lock.
//
// Every step is idempotent: a migration that fails half-way (a timeout, a
// deploy cancelled) is simply run again.
const projectsVersion = 9

// backfillBatch rows are moved per transaction: ~50 ms each on the
// reference machine, so a writer that touches a row being moved waits at
// most that long.
const backfillBatch = 5000

var projectsMigration = goose.NewGoMigration(projectsVersion,
	&goose.GoFunc{RunDB: projectsUp},
	&goose.GoFunc{RunDB: projectsDown},
)

const projectsSchema = `
-- A project groups tasks and carries who may do what to them. Its key is
-- its public name and never changes, so tasks reference it directly.
CREATE TABLE IF NOT EXISTS projects (
    key         text        PRIMARY KEY,
    name        text        NOT NULL
        CONSTRAINT projects_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT ''
        CONSTRAINT projects_description_length CHECK (char_length(description) <= 10000),
    -- The subject whose personal project this is, NULL for a team project.
    -- A personal project's key is '~' and that subject: no key a client
    -- chooses can start with '~', so the two never collide.
    personal_of text        UNIQUE
        CONSTRAINT projects_personal_key CHECK (personal_of IS NULL OR key = '~' || personal_of),
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     bigint      NOT NULL DEFAULT 1
);

-- API-managed members. Roles from Keycloak groups live in tokens, not here.
CREATE TABLE IF NOT EXISTS project_members (
    project    text        NOT NULL REFERENCES projects (key) ON DELETE CASCADE,
    subject    text        NOT NULL,
    role       text        NOT NULL
        CONSTRAINT project_members_role_valid CHECK (role IN ('viewer', 'member', 'maintainer')),
    added_by   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, subject)
);

-- A caller's memberships, read on every request whose roles are not cached.
CREATE INDEX IF NOT EXISTS project_members_subject_idx ON project_members (subject, project) INCLUDE (role);
`

// projectsTasksColumn changes tasks without scanning it. The trigger gives
// a task inserted without a project (by a revision older than this
// migration, still running during a rollout) its owner's personal
// project; its WHEN clause is checked without calling the function, so
// inserts that name a project pay nothing for it.
const projectsTasksColumn = `
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS project text;

CREATE OR REPLACE FUNCTION tasks_personal_project() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO projects (key, name, personal_of, created_by)
    VALUES ('~' || NEW.owner_id, 'Personal', NEW.owner_id, NEW.owner_id)
    ON CONFLICT DO NOTHING;
    NEW.project := '~' || NEW.owner_id;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS tasks_personal_project ON tasks;
CREATE TRIGGER tasks_personal_project BEFORE INSERT ON tasks
    FOR EACH ROW WHEN (NEW.project IS NULL) EXECUTE FUNCTION tasks_personal_project();

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'tasks_project_fkey') THEN
        ALTER TABLE tasks ADD CONSTRAINT tasks_project_fkey
            FOREIGN KEY (project) REFERENCES projects (key) NOT VALID;
    END IF;
END
$$;
`

// projectsBackfill moves one batch of tasks, those after $1 in id order,
// into their owners' personal projects, creating the projects first. It
// returns the batch's last id, none when the walk is over.
var projectsBackfill = `
WITH batch AS (
    SELECT id, owner_id FROM tasks
    WHERE id > $1
    ORDER BY id
    LIMIT ` + strconv.Itoa(backfillBatch) + `
), moved AS (
    INSERT INTO projects (key, name, personal_of, created_by)
    SELECT DISTINCT '~' || owner_id, 'Personal', owner_id, owner_id FROM batch
    ON CONFLICT DO NOTHING
), upd AS (
    UPDATE tasks t SET project = '~' || b.owner_id
    FROM batch b
    WHERE t.id = b.id AND t.project IS NULL
)
SELECT max(id::text)::uuid FROM batch`

// projectsFinish steps are run one at a time, outside a transaction.
var projectsFinish = []struct {
	sql    string
	locked bool // takes a lock that blocks writes: run under lock_timeout
}{
	// Lists of a project, and the foreign key's check when a project is deleted.
	// A build that failed half-way leaves an invalid index; drop it to build again.
	{`DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE c.relname = 'tasks_project_status_created_at_id_idx' AND NOT i.indisvalid) THEN
        DROP INDEX tasks_project_status_created_at_id_idx;
    END IF;
END $$`, true},
	{`CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_project_status_created_at_id_idx ON tasks (project, status, created_at, id)`, false},
	{`ALTER TABLE tasks VALIDATE CONSTRAINT tasks_project_fkey`, false},
	{`DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'tasks_project_not_null') THEN
        ALTER TABLE tasks ADD CONSTRAINT tasks_project_not_null CHECK (project IS NOT NULL) NOT VALID;
    END IF;
END $$`, true},
	{`ALTER TABLE tasks VALIDATE CONSTRAINT tasks_project_not_null`, false},
	// Proven by the validated CHECK, so no scan under the exclusive lock.
	{`ALTER TABLE tasks ALTER COLUMN project SET NOT NULL`, true},
	{`ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_project_not_null`, true},
}

// lockTimeout bounds how long a step waits for a lock that blocks writes,
// since every writer arriving meanwhile queues behind the waiting step.
const lockTimeout = time.Second

func projectsUp(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, projectsSchema); err != nil {
		return fmt.Errorf("projects: tables: %w", err)
	}
	if err := locked(ctx, conn, projectsTasksColumn); err != nil {
		return fmt.Errorf("projects: tasks.project: %w", err)
	}
	last := "00000000-0000-0000-0000-000000000000"
	for {
		var next sql.NullString
		if err := conn.QueryRowContext(ctx, projectsBackfill, last).Scan(&next); err != nil {
			return fmt.Errorf("projects: backfill after %s: %w", last, err)
		}
		if !next.Valid {
			break
		}
		last = next.String
	}
	for _, step := range projectsFinish {
		run := func() error { _, err := conn.ExecContext(ctx, step.sql); return err }
		if step.locked {
			run = func() error { return locked(ctx, conn, step.sql) }
		}
		if err := run(); err != nil {
			return fmt.Errorf("projects: %.60s: %w", step.sql, err)
		}
	}
	return nil
}

// locked runs stmts in one transaction under lockTimeout, retrying a lock
// timeout up to ten times with a pause that lets the queued writers pass.
func locked(ctx context.Context, conn *sql.Conn, stmts string) error {
	var err error
	for range 10 {
		err = func() error {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback() }()
			if _, err := tx.ExecContext(ctx, fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", lockTimeout.Milliseconds())); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, stmts); err != nil {
				return err
			}
			return tx.Commit()
		}()
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55P03" { // lock_not_available
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
	return err
}

func projectsDown(ctx context.Context, db *sql.DB) error {
	const q = `
DROP TRIGGER IF EXISTS tasks_personal_project ON tasks;
DROP FUNCTION IF EXISTS tasks_personal_project();
ALTER TABLE tasks DROP COLUMN IF EXISTS project;
DROP TABLE IF EXISTS project_members;
DROP TABLE IF EXISTS projects;`
	_, err := db.ExecContext(ctx, q)
	return err
}
