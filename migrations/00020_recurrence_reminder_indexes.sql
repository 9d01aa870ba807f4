-- +goose NO TRANSACTION
-- +goose Up

-- A recurring task's next occurrence is filed once: the recur function
-- inserts it ON CONFLICT (recurs_from) DO NOTHING, so a redelivered
-- event, one arriving late, or a task done, reopened and done again all
-- leave the one occurrence the first made.
DROP INDEX CONCURRENTLY IF EXISTS tasks_recurs_from_key;
CREATE UNIQUE INDEX CONCURRENTLY tasks_recurs_from_key ON tasks (recurs_from) WHERE recurs_from IS NOT NULL;

-- The remind function's tick reads what is due, oldest first: only open,
-- live, unarchived tasks with something left to send are in the index,
-- so a tick reads what it sends and nothing else, with a million tasks
-- as with ten (TestRemindPlan).
DROP INDEX CONCURRENTLY IF EXISTS tasks_remind_idx;
CREATE INDEX CONCURRENTLY tasks_remind_idx ON tasks (next_remind_at)
    WHERE next_remind_at IS NOT NULL AND deleted_at IS NULL AND archived_at IS NULL AND status NOT IN ('done', 'cancelled');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS tasks_remind_idx;
DROP INDEX CONCURRENTLY IF EXISTS tasks_recurs_from_key;
