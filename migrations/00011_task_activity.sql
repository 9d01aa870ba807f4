-- +goose Up
-- Every change to a task, written in the transaction of the change itself:
-- a change without its line here cannot exist. Kept as long as the task
-- (ON DELETE CASCADE purges it with it).
CREATE TABLE task_activity (
    -- UUIDv7, made by the writer: newest first is id order.
    id      uuid        PRIMARY KEY,
    task_id uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    at      timestamptz NOT NULL DEFAULT now(),
    -- The subject who made the change; '' for the system.
    actor   text        NOT NULL,
    kind    text        NOT NULL
        CONSTRAINT task_activity_kind_valid CHECK (kind IN ('created', 'updated', 'comment_added', 'comment_removed', 'relation_added', 'relation_removed')),
    -- [{field, old, new}], values as in the task's JSON.
    changes jsonb       NOT NULL DEFAULT '[]'
);

-- A task's page, newest first; also what the cascade finds.
CREATE INDEX task_activity_task_id_id_idx ON task_activity (task_id, id DESC);

-- +goose Down
DROP TABLE IF EXISTS task_activity;
