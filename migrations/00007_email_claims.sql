-- +goose Up

-- notify used to send each email inside a transaction that held the row's
-- lock (SELECT … FOR UPDATE) until the SMTP server answered: a slow relay
-- kept one of the pod's 4 pool connections, and the lock, for up to
-- SMTP_TIMEOUT per email, and the inbox routes waited for a connection.
-- Now an email is claimed by one short UPDATE, sent with no connection
-- held, then marked by another:
--
-- claim_token   names the claim; a mark (sent, failed, released) applies
--               only while the token is still the row's, so a sender whose
--               lease ran out and whose email was taken over changes
--               nothing.
-- claimed_until is the lease: until then another delivery of the event
--               leaves the email alone; after it (the sender died) it may
--               claim the email again.
--
-- Nullable columns without a default: no table rewrite, only a moment of
-- ACCESS EXCLUSIVE lock. During a rollout an old pod may hold a row lock
-- for a whole SMTP conversation, and every query on email_outbox would
-- queue behind this ALTER meanwhile: lock_timeout gives up instead, and
-- the migration can simply run again (IF NOT EXISTS).
SET LOCAL lock_timeout = '5s';
ALTER TABLE email_outbox
    ADD COLUMN IF NOT EXISTS claim_token   uuid,
    ADD COLUMN IF NOT EXISTS claimed_until timestamptz;

-- +goose Down
SET LOCAL lock_timeout = '5s';
ALTER TABLE email_outbox
    DROP COLUMN IF EXISTS claimed_until,
    DROP COLUMN IF EXISTS claim_token;
