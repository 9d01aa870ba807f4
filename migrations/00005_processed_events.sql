-- +goose Up

-- processed_events makes event consumers idempotent: a consumer inserts
-- (consumer, event id) in the same transaction as the event's effect, so a
-- redelivered event finds its record and changes nothing. Records are
-- kept for the redelivery window, then purged by cleanup.
CREATE TABLE processed_events (
    consumer     text        NOT NULL,
    event_id     text        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

CREATE INDEX processed_events_processed_at_idx ON processed_events (processed_at);

-- Retention: cleanup deletes finished tasks by the age of their last
-- change, a batch at a time; this keeps each batch an index range scan
-- over finished tasks only.
CREATE INDEX tasks_finished_updated_at_idx ON tasks (updated_at) WHERE status IN ('done', 'cancelled');

-- +goose Down
DROP INDEX tasks_finished_updated_at_idx;
DROP TABLE processed_events;
