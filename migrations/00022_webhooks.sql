-- +goose Up

-- Webhooks out (issue #18, docs/webhooks.md): subscriptions to task,
-- comment and relation events, and one delivery row per (webhook, event).

-- webhooks are the subscriptions. project NULL: every project (an admin's
-- only). secret is the Standard Webhooks signing secret, sealed with
-- AES-256-GCM under WEBHOOK_SECRET_KEY (webhook.Sealer): a dump of the
-- database alone does not let anyone forge deliveries. The owner_* columns
-- are what the owner's token said when the owner last called a webhook
-- route (global roles, and the project roles its Keycloak groups give):
-- the delivery-time check needs them and no token is at hand then. The
-- members table is read live.
CREATE TABLE IF NOT EXISTS webhooks (
    id                   uuid        PRIMARY KEY,
    owner                text        NOT NULL,
    project              text        REFERENCES projects (key) ON DELETE CASCADE,
    url                  text        NOT NULL CHECK (char_length(url) <= 2000),
    types                text[]      NOT NULL CHECK (cardinality(types) BETWEEN 1 AND 50),
    content_mode         text        NOT NULL DEFAULT 'structured' CHECK (content_mode IN ('structured', 'binary')),
    secret               bytea       NOT NULL,
    enabled              boolean     NOT NULL DEFAULT true,
    disabled_reason      text        NOT NULL DEFAULT '',
    consecutive_failures integer     NOT NULL DEFAULT 0,
    owner_roles          text[]      NOT NULL DEFAULT '{}',
    owner_group_roles    jsonb       NOT NULL DEFAULT '{}',
    roles_at             timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    version              bigint      NOT NULL DEFAULT 1
);

-- A caller's list, keyset-paged on id (UUIDv7: creation order).
CREATE INDEX IF NOT EXISTS webhooks_owner_id_idx ON webhooks (owner, id);
-- The sink's lookup per event: the enabled webhooks of its project and
-- the all-projects ones (project IS NULL).
CREATE INDEX IF NOT EXISTS webhooks_enabled_project_idx ON webhooks (project) WHERE enabled;

-- webhook_deliveries: one row per (webhook, event), unique, so a Kafka
-- redelivery of the event adds nothing and a receiver that answered 2xx
-- is never posted the event again. event is the CloudEvent as structured
-- JSON, so a retry needs no Kafka. next_attempt_at doubles as the lease:
-- a claim moves it past the attempt's time bound, so a claim whose
-- process died becomes due again by itself; lease_token says whose the
-- claim is, and only its holder may mark the outcome.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               uuid        PRIMARY KEY,
    webhook_id       uuid        NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    projects         text[]      NOT NULL DEFAULT '{}',
    event            bytea       NOT NULL,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed', 'dropped')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_token      uuid,
    status_code      integer,
    latency_ms       integer,
    error            text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_webhook_event_key UNIQUE (webhook_id, event_id)
);

-- The retry tick's claim: due pending rows, oldest due first.
CREATE INDEX IF NOT EXISTS webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
-- A webhook's last deliveries, newest first.
CREATE INDEX IF NOT EXISTS webhook_deliveries_webhook_created_idx ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

-- Pruning by the retry tick: finished deliveries past WEBHOOK_DELIVERY_RETENTION.
CREATE INDEX IF NOT EXISTS webhook_deliveries_finished_idx ON webhook_deliveries (updated_at) WHERE state <> 'pending';

-- +goose Down
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhooks;
