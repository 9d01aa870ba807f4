-- +goose Up

-- A task's JSON shows how many subtasks it has and how many are closed
-- (done or cancelled). Counting them on every read would put a join into
-- the cached GET; instead the counts are columns, kept by the same
-- transaction as every change that moves them (a subtask_of relation added
-- or removed, a subtask closed, reopened or deleted), which also bumps the
-- parent's version: its representation changed, so its ETag and cache
-- entry must.
--
-- A constant default: PostgreSQL 11+ records it in the catalogue, so the
-- columns cost no table rewrite, only a moment of ACCESS EXCLUSIVE lock;
-- lock_timeout gives up rather than queue every query behind a long
-- transaction, and the migration can simply run again.
SET LOCAL lock_timeout = '5s';
ALTER TABLE tasks
    ADD COLUMN IF NOT EXISTS subtasks_total integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS subtasks_done  integer NOT NULL DEFAULT 0;

-- Relations made before the counts: few rows, counted once.
UPDATE tasks p
SET subtasks_total = c.total,
    subtasks_done = c.done
FROM (
    SELECT r.other_id AS id,
           count(*) AS total,
           count(*) FILTER (WHERE t.status IN ('done', 'cancelled')) AS done
    FROM task_relations r
    JOIN tasks t ON t.id = r.task_id
    WHERE r.kind = 'subtask_of'
    GROUP BY r.other_id
) c
WHERE p.id = c.id
  AND (p.subtasks_total, p.subtasks_done) IS DISTINCT FROM (c.total, c.done);

-- +goose Down
SET LOCAL lock_timeout = '5s';
ALTER TABLE tasks
    DROP COLUMN IF EXISTS subtasks_done,
    DROP COLUMN IF EXISTS subtasks_total;
