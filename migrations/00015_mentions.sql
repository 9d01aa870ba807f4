-- +goose Up

-- @username mentions in comments notify the people named, if they may see
-- the task. Who may see it depends on roles that live in tokens (global
-- roles, Keycloak group roles), and a comment's writer has only its own
-- token: the people directory now keeps what each person's latest verified
-- token said, and when. A mention trusts those roles for
-- MENTION_ROLES_MAX_AGE after that request (see docs/collaboration.md).
--
-- username     the token's preferred_username, lowercased as Keycloak
--              stores it; not unique over time (an account renamed, another
--              given the name), so the most recently seen subject wins.
-- roles        the taskfn roles the token carried (task-admin, ...).
-- project_roles the group roles by project key: {"web": "member"}.
-- roles_seen_at when a request proved them; refreshed at most hourly.
SET LOCAL lock_timeout = '5s';
ALTER TABLE people
    ADD COLUMN IF NOT EXISTS username      text,
    ADD COLUMN IF NOT EXISTS roles         text[] NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS project_roles jsonb  NOT NULL DEFAULT '{}',
    ADD COLUMN IF NOT EXISTS roles_seen_at timestamptz;
CREATE INDEX IF NOT EXISTS people_username_idx ON people (username, roles_seen_at DESC);

-- The subjects a comment's mentions have notified, so an edit tells only
-- the people it newly names: once per comment, however often it is edited.
ALTER TABLE comments
    ADD COLUMN IF NOT EXISTS mentioned text[] NOT NULL DEFAULT '{}';

-- +goose Down
SET LOCAL lock_timeout = '5s';
ALTER TABLE comments DROP COLUMN IF EXISTS mentioned;
DROP INDEX IF EXISTS people_username_idx;
ALTER TABLE people
    DROP COLUMN IF EXISTS roles_seen_at,
    DROP COLUMN IF EXISTS project_roles,
    DROP COLUMN IF EXISTS roles,
    DROP COLUMN IF EXISTS username;
