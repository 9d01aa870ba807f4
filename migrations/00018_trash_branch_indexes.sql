-- +goose NO TRANSACTION
-- +goose Up

-- A caller's trash is what it trashed, every task of the projects it
-- maintains, and its own tasks of projects where it is a member. Walking
-- the whole trash newest first and filtering read ten rows for each one
-- kept when the caller's share was a tenth (make bench), and would read a
-- thousand when it is a thousandth. Each part has its own ordered index
-- instead, and GET /trash merges one ordered, limited branch per part
-- (shared/task/trash.go), as the lists do.
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_deleted_by_idx;
CREATE INDEX CONCURRENTLY tasks_trash_deleted_by_idx ON tasks (deleted_by, deleted_at, id) WHERE deleted_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_project_idx;
CREATE INDEX CONCURRENTLY tasks_trash_project_idx ON tasks (project, deleted_at, id) WHERE deleted_at IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_owner_idx;
CREATE INDEX CONCURRENTLY tasks_trash_owner_idx ON tasks (owner_id, deleted_at, id) WHERE deleted_at IS NOT NULL;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_owner_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_project_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_deleted_by_idx;
