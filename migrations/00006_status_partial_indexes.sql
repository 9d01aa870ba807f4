-- +goose NO TRANSACTION
-- +goose Up

-- A list of one status, newest first, was planned as a walk of
-- tasks_created_at_id_idx that filters on status: PostgreSQL's cost model
-- preferred it over (status, created_at, id), whose heap order is random.
-- When the newest tasks are mostly another status (a burst of new "todo"
-- tasks), that walk passes all of them: 48 ms instead of 0.06 ms for 20,000
-- of them. A partial index per status leaves nothing to filter, so it is
-- the cheapest path by the planner's own estimate, whatever the skew. The
-- list query writes statuses as literals so every plan, generic ones too,
-- can match these predicates.
--
-- CONCURRENTLY: no write waits for the build on a large table. A failed
-- build leaves an invalid index behind, so each is dropped first and the
-- migration can simply run again.
DROP INDEX CONCURRENTLY IF EXISTS tasks_todo_created_at_id_idx;
CREATE INDEX CONCURRENTLY tasks_todo_created_at_id_idx ON tasks (created_at, id) WHERE status = 'todo';
DROP INDEX CONCURRENTLY IF EXISTS tasks_in_progress_created_at_id_idx;
CREATE INDEX CONCURRENTLY tasks_in_progress_created_at_id_idx ON tasks (created_at, id) WHERE status = 'in_progress';
DROP INDEX CONCURRENTLY IF EXISTS tasks_blocked_created_at_id_idx;
CREATE INDEX CONCURRENTLY tasks_blocked_created_at_id_idx ON tasks (created_at, id) WHERE status = 'blocked';
DROP INDEX CONCURRENTLY IF EXISTS tasks_done_created_at_id_idx;
CREATE INDEX CONCURRENTLY tasks_done_created_at_id_idx ON tasks (created_at, id) WHERE status = 'done';
DROP INDEX CONCURRENTLY IF EXISTS tasks_cancelled_created_at_id_idx;
CREATE INDEX CONCURRENTLY tasks_cancelled_created_at_id_idx ON tasks (created_at, id) WHERE status = 'cancelled';
DROP INDEX CONCURRENTLY IF EXISTS tasks_status_created_at_id_idx;

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS tasks_status_created_at_id_idx;
CREATE INDEX CONCURRENTLY tasks_status_created_at_id_idx ON tasks (status, created_at, id);
DROP INDEX CONCURRENTLY IF EXISTS tasks_cancelled_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_done_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_blocked_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_in_progress_created_at_id_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_todo_created_at_id_idx;
