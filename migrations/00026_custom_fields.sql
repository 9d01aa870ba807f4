-- +goose NO TRANSACTION
-- +goose Up
-- Custom fields per project (issue #22, docs/custom-fields.md): a
-- project's field definitions, and each task's values in tasks.fields.
-- Outside a transaction so that the tasks constraint below is validated
-- without holding the ACCESS EXCLUSIVE lock its ADD took; every statement
-- is safe to run again, so a run that failed half-way is simply run again.
--
-- custom_fields is one row per definition. The id is what a task's value
-- is keyed by (tasks.fields is {"<id>": value}), so renaming a field
-- rewrites no task, and a field deleted and made again under the same
-- name starts empty: its id is new, and an identity is never reused.
-- options is [{"id": "opt_…", "name": "…"}] for select and multi_select
-- ('[]' for the other types); a value names an option by its id, which
-- never changes, so renaming an option rewrites no task either.
-- deleted_at: a soft delete. Set, the definition is hidden at once (every
-- read filters it out, and task values are shown through the live
-- definitions only); cleanup then removes its values from tasks in
-- batches and deletes the row when no task carries it (field.PurgeDeleted).
-- The name and type limits repeat shared/field's.
CREATE TABLE IF NOT EXISTS custom_fields (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project    text        NOT NULL REFERENCES projects (key) ON DELETE CASCADE,
    name       text        NOT NULL
        CONSTRAINT custom_fields_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    type       text        NOT NULL
        CONSTRAINT custom_fields_type_valid CHECK (type IN ('text', 'number', 'date', 'datetime', 'checkbox', 'url', 'user', 'select', 'multi_select')),
    options    jsonb       NOT NULL DEFAULT '[]'
        CONSTRAINT custom_fields_options_array CHECK (jsonb_typeof(options) = 'array'),
    required   boolean     NOT NULL DEFAULT false,
    position   int         NOT NULL,
    version    bigint      NOT NULL DEFAULT 1,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);

-- Names are unique per project among live definitions, whatever the case
-- ("Severity" and "severity" would be one field to a reader). A deleted
-- one frees its name at once. It also serves Load: a project's live
-- definitions.
CREATE UNIQUE INDEX IF NOT EXISTS custom_fields_project_name_key ON custom_fields (project, lower(name))
    WHERE deleted_at IS NULL;

-- Cleanup's purge scan: only the deleted definitions, oldest first.
CREATE INDEX IF NOT EXISTS custom_fields_deleted_idx ON custom_fields (deleted_at)
    WHERE deleted_at IS NOT NULL;

-- A task's values. A volatile-free default: no table rewrite (PG >= 11),
-- so the ADD holds its lock only for a moment; lock_timeout gives up
-- rather than queue every query on tasks behind it while an old pod holds
-- a row lock. The object CHECK is added NOT VALID (no scan under that
-- lock) and validated apart, which scans under a lock writes do not wait
-- on. No index on fields here: 00027 owns the filters' indexes.
SET lock_timeout = '5s';
ALTER TABLE tasks ADD COLUMN IF NOT EXISTS fields jsonb NOT NULL DEFAULT '{}';
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'tasks_fields_object') THEN
        ALTER TABLE tasks ADD CONSTRAINT tasks_fields_object CHECK (jsonb_typeof(fields) = 'object') NOT VALID;
    END IF;
END
$$;
-- +goose StatementEnd
RESET lock_timeout;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_fields_object;

-- +goose Down
SET lock_timeout = '5s';
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_fields_object;
ALTER TABLE tasks DROP COLUMN IF EXISTS fields;
RESET lock_timeout;
DROP TABLE IF EXISTS custom_fields;
