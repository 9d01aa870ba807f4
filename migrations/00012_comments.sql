-- +goose Up
-- Comments on tasks: kept as long as their task, purged with it.
CREATE TABLE comments (
    -- UUIDv7, made by the writer: oldest first is id order.
    id         uuid        PRIMARY KEY,
    task_id    uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    author     text        NOT NULL,
    body       text        NOT NULL
        CONSTRAINT comments_body_length CHECK (char_length(body) BETWEEN 1 AND 10000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- When the author last changed the body; NULL if never.
    edited_at  timestamptz,
    version    bigint      NOT NULL DEFAULT 1
);

-- A task's comments in order, and what the cascade finds.
CREATE INDEX comments_task_id_id_idx ON comments (task_id, id);

-- +goose Down
DROP TABLE IF EXISTS comments;
