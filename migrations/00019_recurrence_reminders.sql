-- +goose Up

-- Recurring tasks and due-date reminders (docs/lifecycle.md).
--
-- recurrence is an RFC 5545 RRULE anchored on due_at in recurrence_tz;
-- the recur function files the next occurrence of a done task with
-- recurs_from set to it, and the unique index of migration 20 on
-- recurs_from makes that happen once however often, and in whatever
-- order, the events arrive. series_id is the series' first task (no key:
-- it names the series even once that task is purged).
--
-- reminders are ISO 8601 durations before due_at; next_remind_at is the
-- next moment the remind function has something to send for the task (a
-- reminder, or the overdue notice at due_at), kept by the trigger below
-- so every write path, whatever it changed, keeps it right.
--
-- Constant defaults and nullable columns: catalogue only, no rewrite.
SET LOCAL lock_timeout = '5s';
ALTER TABLE tasks
    ADD COLUMN IF NOT EXISTS recurrence     text,
    ADD COLUMN IF NOT EXISTS recurrence_tz  text NOT NULL DEFAULT 'UTC',
    ADD COLUMN IF NOT EXISTS reminders      text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS series_id      uuid,
    ADD COLUMN IF NOT EXISTS recurs_from    uuid REFERENCES tasks (id) ON DELETE SET NULL,
    ADD COLUMN IF NOT EXISTS next_remind_at timestamptz;

-- The limits shared/task/patch.go checks, held by the table. The columns
-- are new, so there is nothing to validate.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_recurrence_valid;
ALTER TABLE tasks ADD CONSTRAINT tasks_recurrence_valid CHECK (
    (recurrence IS NULL OR (length(recurrence) BETWEEN 1 AND 500 AND due_at IS NOT NULL))
    AND length(recurrence_tz) BETWEEN 1 AND 64);
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_reminders_valid;
ALTER TABLE tasks ADD CONSTRAINT tasks_reminders_valid CHECK (
    cardinality(reminders) = 0 OR (cardinality(reminders) <= 5 AND due_at IS NOT NULL));

-- The moments a task's reminders fire, with the reminder (NULL for the
-- overdue notice at due_at itself). The offset is taken in the task's
-- zone, so "-P1D" before 09:00 on the Monday after a DST change is 09:00
-- on the Sunday. A reminder is '-' then an ISO 8601 duration PostgreSQL
-- reads as an interval (shared/task/reminders.go writes only such).
CREATE OR REPLACE FUNCTION task_reminder_times(due timestamptz, reminders text[], tz text)
RETURNS TABLE (fire_at timestamptz, reminder text)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT ((due AT TIME ZONE tz) - substr(r, 2)::interval) AT TIME ZONE tz, r
    FROM unnest(reminders) AS r
    WHERE due IS NOT NULL
    UNION ALL
    SELECT due, NULL
    WHERE due IS NOT NULL
$$;

-- The first of those moments after "after": what the task waits for.
CREATE OR REPLACE FUNCTION task_next_remind(due timestamptz, reminders text[], tz text, after timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT min(fire_at) FROM task_reminder_times(due, reminders, tz) WHERE fire_at > after
$$;

-- Recompute next_remind_at when what it depends on changes, or when the
-- task comes back to life (reopened, restored, unarchived): moments
-- already past are not sent late. The remind function's own update sets
-- next_remind_at and changes none of these, so it is left alone.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION tasks_next_remind() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.due_at IS NULL THEN
        NEW.next_remind_at := NULL;
    ELSIF TG_OP = 'INSERT'
       OR NEW.due_at IS DISTINCT FROM OLD.due_at
       OR NEW.reminders IS DISTINCT FROM OLD.reminders
       OR NEW.recurrence_tz IS DISTINCT FROM OLD.recurrence_tz
       OR (OLD.status IN ('done', 'cancelled') AND NEW.status NOT IN ('done', 'cancelled'))
       OR (OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL)
       OR (OLD.archived_at IS NOT NULL AND NEW.archived_at IS NULL) THEN
        NEW.next_remind_at := task_next_remind(NEW.due_at, NEW.reminders, NEW.recurrence_tz, now());
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd
DROP TRIGGER IF EXISTS tasks_next_remind ON tasks;
CREATE TRIGGER tasks_next_remind
    BEFORE INSERT OR UPDATE OF due_at, reminders, recurrence_tz, status, deleted_at, archived_at ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_next_remind();

-- Tasks that already have a due date: their overdue notice, from now on.
UPDATE tasks SET next_remind_at = due_at
WHERE due_at > now() AND next_remind_at IS NULL AND deleted_at IS NULL AND status NOT IN ('done', 'cancelled');

-- +goose Down
SET LOCAL lock_timeout = '5s';
DROP TRIGGER IF EXISTS tasks_next_remind ON tasks;
DROP FUNCTION IF EXISTS tasks_next_remind();
DROP FUNCTION IF EXISTS task_next_remind(timestamptz, text[], text, timestamptz);
DROP FUNCTION IF EXISTS task_reminder_times(timestamptz, text[], text);
ALTER TABLE tasks
    DROP CONSTRAINT IF EXISTS tasks_reminders_valid,
    DROP CONSTRAINT IF EXISTS tasks_recurrence_valid,
    DROP COLUMN IF EXISTS next_remind_at,
    DROP COLUMN IF EXISTS recurs_from,
    DROP COLUMN IF EXISTS series_id,
    DROP COLUMN IF EXISTS reminders,
    DROP COLUMN IF EXISTS recurrence_tz,
    DROP COLUMN IF EXISTS recurrence;
