-- +goose NO TRANSACTION
-- +goose Up
-- The weekly digest (issue #19). 00024 is reserved for another change.
-- Outside a transaction, for the CONCURRENTLY index on tasks below; every
-- statement is safe to run again, so a run that failed half-way is
-- simply run again.
--
-- digest_preferences is one row per subject who has PUT /me/preferences.
-- It holds no email and no roles: those are the people directory's
-- (people.email, people.roles, people.project_roles), which every gated
-- route, GET and PUT /me/preferences included, refreshes from the
-- caller's verified token; the digest reads them, with the live members
-- table, when it is sent.
--
-- next_digest_at is the next moment a digest is due: the Monday 07:00 in
--                time_zone of the first ISO week not yet sent (written by
--                the application, digest.DueAt), NULL when the digest is
--                off. The tick takes rows whose moment has passed.
-- last_week      is the ISO week ("2026-W49") last sent.
-- claimed_until  is a tick's lease on the row while it computes the
--                digest, so two ticks do not both do the work; exactly once
--                rests on digests' unique (subject, week), not on it.
CREATE TABLE IF NOT EXISTS digest_preferences (
    subject        text        PRIMARY KEY,
    digest         text        NOT NULL
        CONSTRAINT digest_preferences_digest_valid CHECK (digest IN ('weekly', 'off')),
    time_zone      text        NOT NULL DEFAULT 'UTC',
    next_digest_at timestamptz,
    last_week      text,
    claimed_until  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT digest_preferences_due CHECK ((digest = 'weekly') = (next_digest_at IS NOT NULL))
);

-- The tick's scan: only opted-in rows, in due order.
CREATE INDEX IF NOT EXISTS digest_preferences_due_idx ON digest_preferences (next_digest_at)
    WHERE next_digest_at IS NOT NULL;

-- digests is one row per digest sent: the unique (subject, week) is what
-- makes a week's digest happen once, whatever ticks overlap. Its event
-- (dev.taskfn.digest.weekly.v1) is written in the same transaction and
-- names the row; the chart stays here, out of Kafka, and notify copies it
-- into the email it queues.
CREATE TABLE IF NOT EXISTS digests (
    id         uuid        PRIMARY KEY,
    subject    text        NOT NULL,
    week       text        NOT NULL,
    chart_png  bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT digests_subject_week_key UNIQUE (subject, week)
);
CREATE INDEX IF NOT EXISTS digests_created_at_idx ON digests (created_at);

-- What each digest counts: the tasks of the user's projects completed
-- last week. Without this index that is every done task of those projects
-- (tasks_live_project_status_created_at_id_idx, all of a project's done
-- tasks, ever), once per user per week; with it, last week's only. Not
-- limited to unarchived rows: a task archived by hand right after it was
-- done still counts. CONCURRENTLY: writes to tasks do not wait; an invalid
-- index a failed build left is dropped first.
DROP INDEX CONCURRENTLY IF EXISTS tasks_done_project_completed_at_idx;
CREATE INDEX CONCURRENTLY tasks_done_project_completed_at_idx ON tasks (project, completed_at)
    WHERE status = 'done' AND deleted_at IS NULL;

-- An email's inline image (the digest's chart), sent as a multipart/related
-- part with a Content-ID. Nullable, no default: no table rewrite. An old
-- pod may hold a row lock meanwhile: lock_timeout gives up rather than
-- queue every query on email_outbox behind the ALTER (this session only).
SET lock_timeout = '5s';
ALTER TABLE email_outbox ADD COLUMN IF NOT EXISTS inline_png bytea;
RESET lock_timeout;

-- +goose Down
SET lock_timeout = '5s';
ALTER TABLE email_outbox DROP COLUMN IF EXISTS inline_png;
RESET lock_timeout;
DROP INDEX CONCURRENTLY IF EXISTS tasks_done_project_completed_at_idx;
DROP TABLE IF EXISTS digests;
DROP TABLE IF EXISTS digest_preferences;
