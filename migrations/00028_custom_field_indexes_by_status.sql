-- +goose NO TRANSACTION
-- +goose Up

-- Custom field equality, one GIN index per status (docs/custom-fields.md,
-- Indexes and plans).
--
-- A project's list filtered by a custom field is one branch per status,
-- each with "status = '<s>'" as a literal. When a value is rare in the
-- project, a branch asks the GIN index for its matches (task.fieldPageSQL);
-- with the one index of 00027 that read the matches of every status, five
-- times what a branch keeps. Each of these holds one status's live tasks,
-- so a branch's bitmap is its own matches only.
--
-- Each live task is in exactly one of them, so a write updates as many
-- GIN entries as before. CONCURRENTLY, each built before the old index
-- goes, so no write waits and no list loses its index meanwhile; a failed
-- build leaves an invalid index, dropped first when the migration runs
-- again.
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_todo_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_todo_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE status = 'todo' AND deleted_at IS NULL AND archived_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_in_progress_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_in_progress_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE status = 'in_progress' AND deleted_at IS NULL AND archived_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_blocked_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_blocked_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE status = 'blocked' AND deleted_at IS NULL AND archived_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_done_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_done_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE status = 'done' AND deleted_at IS NULL AND archived_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_cancelled_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_cancelled_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE status = 'cancelled' AND deleted_at IS NULL AND archived_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_fields_idx;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_fields_idx;
CREATE INDEX CONCURRENTLY tasks_live_fields_idx ON tasks USING gin (fields jsonb_path_ops)
    WHERE deleted_at IS NULL AND archived_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_todo_fields_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_in_progress_fields_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_blocked_fields_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_done_fields_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_live_cancelled_fields_idx;
