-- +goose NO TRANSACTION
-- +goose Up

-- A caller's trash is what it trashed, every task of the projects it
-- maintains, and its own tasks of projects where it is a member. Walking
-- the whole trash newest first and filtering read ten rows for each one
-- kept when the caller's share was a tenth (make bench), and would read a
-- thousand when it is a thousandth. Each part has its own ordered index
-- instead, and GET /trash merges one ordered, limited branch per part
-- (shared/task/trash.go), as the lists do.
--
-- deleted_by is set exactly while deleted_at is, and its index's predicate
-- is its own: a branch saying only "deleted_by = $1" then has the estimate
-- of that value's own statistics. Said with "deleted_at IS NOT NULL" as
-- well, PostgreSQL multiplies the two as if independent, estimates a
-- user's 2,000 trashed tasks as 35, and sorts them all (make bench).
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_deleted_by_idx;
CREATE INDEX CONCURRENTLY tasks_trash_deleted_by_idx ON tasks (deleted_by, deleted_at, id) WHERE deleted_by IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_project_idx;
CREATE INDEX CONCURRENTLY tasks_trash_project_idx ON tasks (project, deleted_at, id) WHERE deleted_at IS NOT NULL;
-- A member's own tasks of the projects it writes to: owner and project
-- both in the index condition, so what is read is exactly the caller's
-- own trashed tasks there (sorted: they are the caller's few), never
-- other owners' rows filtered out.
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_owner_idx;
CREATE INDEX CONCURRENTLY tasks_trash_owner_idx ON tasks (owner_id, project, deleted_at, id) WHERE deleted_at IS NOT NULL;


-- What the deleted_by branch relies on, held by the table. NOT VALID then
-- VALIDATE: checking the rows takes no lock that blocks writes.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_trashed_by_whom;
ALTER TABLE tasks ADD CONSTRAINT tasks_trashed_by_whom CHECK ((deleted_at IS NULL) = (deleted_by IS NULL)) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_trashed_by_whom;

-- +goose Down
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_trashed_by_whom;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_owner_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_project_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_trash_deleted_by_idx;
