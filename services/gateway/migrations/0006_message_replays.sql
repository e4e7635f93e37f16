-- Idempotent messages: the answer to a ProcessMessage that named an idempotency key, so
-- that a retry with the same key gets the same answer instead of a second turn. A row
-- with no answer is a claim: its message is being processed. The answer is sealed
-- (AES-256-GCM under a tenant key the database never sees): it holds the redacted text
-- and may hold a one-time verification code. The fingerprint is an HMAC of the request
-- under another tenant key. Rows expire after the replay window and go with an erasure.
CREATE TABLE message_replays (
    tenant_id       uuid        NOT NULL REFERENCES tenants (tenant_id),
    conversation_id text        NOT NULL,
    idempotency_key text        NOT NULL,
    subject_ref     text        NOT NULL,
    fingerprint     bytea       NOT NULL,
    claim           uuid        NOT NULL,
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    answer          bytea,
    answered_at     timestamptz,
    PRIMARY KEY (tenant_id, conversation_id, idempotency_key)
) WITH (fillfactor = 70);

-- The answer is stored by an UPDATE of the claim's row; room on its page makes that a
-- heap-only update that touches no index. Rows come in time order, so a BRIN index
-- serves the expiry at almost no cost per row.
CREATE INDEX message_replays_subject ON message_replays (tenant_id, subject_ref);
CREATE INDEX message_replays_claimed ON message_replays USING brin (claimed_at);
