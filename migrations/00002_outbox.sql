-- +goose Up
-- The transactional outbox: every task write inserts its events here in the
-- same transaction, so an event exists if and only if its change committed.
-- Rows are published to Kafka after commit (by the writer at once, or later
-- by relay-outbox) and deleted some time after publication.
CREATE TABLE outbox (
    -- Publication order. Per key it is also commit order: writers of one
    -- task hold its row lock, so a later change inserts a larger id.
    id           bigserial   PRIMARY KEY,
    -- The CloudEvent id: a re-send carries it again, so it is a duplicate,
    -- never a new event.
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    -- The Kafka record key (task id): one partition, one order per key.
    key          text        NOT NULL,
    type         text        NOT NULL,
    source       text        NOT NULL,
    subject      text        NOT NULL,
    data         jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text
);

-- What is left to publish, per key in order: the relay groups it by key, a
-- writer reads one key's rows. Small, since rows leave it once published.
CREATE INDEX outbox_unpublished_key_id_idx ON outbox (key, id)
    WHERE published_at IS NULL;

-- Cleanup deletes published rows oldest first.
CREATE INDEX outbox_published_at_idx ON outbox (published_at)
    WHERE published_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox;
