-- +goose Up

-- Nothing a user made disappears by accident. DELETE /tasks/{id} moves a
-- task to the trash (deleted_at, deleted_by), from which it can be
-- restored until cleanup purges it after TRASH_RETENTION_DAYS; cleanup
-- archives finished tasks instead of deleting them (archived_at), and an
-- archived task leaves the default lists but is otherwise a task. The rows
-- stay in tasks so comments, history and relations, which reference them,
-- stay too; migration 17 rebuilds the list indexes to leave these rows out.
--
-- Nullable columns without a default: catalogue only, no table rewrite.
SET LOCAL lock_timeout = '5s';
ALTER TABLE tasks
    ADD COLUMN IF NOT EXISTS deleted_at  timestamptz,
    ADD COLUMN IF NOT EXISTS deleted_by  text,
    ADD COLUMN IF NOT EXISTS archived_at timestamptz;

-- A task's history says when it went to the trash and came back. NOT
-- VALID then VALIDATE: the check of existing rows takes no lock that
-- blocks writes.
ALTER TABLE task_activity DROP CONSTRAINT IF EXISTS task_activity_kind_valid;
ALTER TABLE task_activity ADD CONSTRAINT task_activity_kind_valid
    CHECK (kind IN ('created', 'updated', 'comment_added', 'comment_removed', 'relation_added', 'relation_removed', 'trashed', 'restored')) NOT VALID;
ALTER TABLE task_activity VALIDATE CONSTRAINT task_activity_kind_valid;

-- +goose Down
SET LOCAL lock_timeout = '5s';
DELETE FROM task_activity WHERE kind IN ('trashed', 'restored');
ALTER TABLE task_activity DROP CONSTRAINT IF EXISTS task_activity_kind_valid;
ALTER TABLE task_activity ADD CONSTRAINT task_activity_kind_valid
    CHECK (kind IN ('created', 'updated', 'comment_added', 'comment_removed', 'relation_added', 'relation_removed'));
-- Trashed tasks go for good on the way down: without the column they
-- would come back to life.
DELETE FROM tasks WHERE deleted_at IS NOT NULL;
ALTER TABLE tasks
    DROP COLUMN IF EXISTS archived_at,
    DROP COLUMN IF EXISTS deleted_by,
    DROP COLUMN IF EXISTS deleted_at;
