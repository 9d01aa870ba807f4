-- +goose Up

-- Commands from producers (ingest-events, docs/producers.md).
--
-- command_receipts makes a command have one effect however often it is
-- delivered: the first delivery's answer (status, body, Location) is
-- inserted in the same transaction as the command's effect, so a repeat
-- finds it and is answered with it, changing nothing. The key is the
-- producer's identity (the subject it acts as) with the CloudEvents
-- source and id, so one producer cannot read or block another's answers.
-- A refused command is recorded only on the Kafka path, with its
-- rejected event (so a redelivery does not send a second one). Receipts
-- are kept for the redelivery window; created_at orders their purge.
CREATE TABLE IF NOT EXISTS command_receipts (
    producer   text        NOT NULL,
    source     text        NOT NULL,
    id         text        NOT NULL,
    status     smallint    NOT NULL,
    body       bytea       NOT NULL,
    location   text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, source, id)
);

CREATE INDEX IF NOT EXISTS command_receipts_created_at_idx ON command_receipts (created_at);

-- command_refs is a producer's own name for a task (the externalref
-- extension, e.g. alertmanager:<fingerprint>): the first create command
-- naming it creates the task and the ref in one transaction, later ones
-- change that task. The key makes two concurrent first creates one: the
-- second waits on the first's insert and then finds the ref. A purged
-- task takes its refs with it, so the next create makes a new one.
CREATE TABLE IF NOT EXISTS command_refs (
    producer   text        NOT NULL,
    ref        text        NOT NULL,
    task_id    uuid        NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, ref)
);

-- The foreign key's lookups when a task is purged.
CREATE INDEX IF NOT EXISTS command_refs_task_id_idx ON command_refs (task_id);

-- +goose Down
DROP TABLE IF EXISTS command_refs;
DROP TABLE IF EXISTS command_receipts;
