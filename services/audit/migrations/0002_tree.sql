-- Audit issue: batched ingest, the Merkle tree over the entries, signed tree heads,
-- anomaly rules and incidents.

-- Who acted, for Query and the anomaly rules (an API key id, JWT subject or service
-- name; never a data subject's external id).
ALTER TABLE entries ADD COLUMN actor_id text;
CREATE INDEX entries_tenant_actor ON entries (tenant_id, actor_id, idx)
    WHERE actor_id IS NOT NULL;

-- Events received but not yet appended. The ingest consumer only inserts here (one
-- cheap row per event, idempotent by event_id); the single writer moves them into
-- `entries` in batches, in arrival order.
CREATE TABLE pending (
    seq          bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    tenant_id    uuid,
    subject_ref  text,
    actor_id     text,
    event_type   text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    envelope     bytea       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Perfect-subtree hashes of the RFC 6962 tree above the leaves: node `idx` of `level`
-- covers leaves [idx * 2^level, (idx + 1) * 2^level). Level 0 is entries.leaf_hash.
-- Written once, never updated: a root or proof for any size needs O(log n) of them.
CREATE TABLE nodes (
    level  smallint NOT NULL CHECK (level > 0),
    idx    bigint   NOT NULL,
    hash   bytea    NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Number of leaves whose nodes are complete; entries beyond it (written before this
-- migration) are adopted by the writer.
CREATE TABLE tree_state (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size       bigint  NOT NULL
);
INSERT INTO tree_state (size) VALUES (0);

-- Signed tree heads (Ed25519 over signed_payload, which encodes size, time and root).
CREATE TABLE tree_heads (
    tree_size       bigint      PRIMARY KEY,
    root_hash       bytea       NOT NULL,
    signed_at       timestamptz NOT NULL,
    signed_payload  bytea       NOT NULL,
    signature       bytea       NOT NULL,
    key_id          text        NOT NULL,
    public_key      bytea       NOT NULL
);

-- Events that anomaly rules count, kept for the longest window. tenant_id is the nil
-- UUID for events of no tenant, so the window index serves every lookup.
CREATE TABLE rule_events (
    rule         text        NOT NULL,
    tenant_id    uuid        NOT NULL,
    rule_key     text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    event_id     uuid        NOT NULL,
    subject_ref  text,
    weight       bigint      NOT NULL
);
CREATE INDEX rule_events_window ON rule_events (rule, tenant_id, rule_key, occurred_at);

-- Incidents opened by the rules; state 1 open, 2 acknowledged, 3 notified, 4 closed
-- (veil.common.v1.IncidentState), severity as veil.common.v1.IncidentSeverity.
CREATE TABLE incidents (
    incident_id            uuid        PRIMARY KEY,
    tenant_id              uuid,
    rule                   text        NOT NULL,
    rule_key               text        NOT NULL,
    severity               smallint    NOT NULL,
    state                  smallint    NOT NULL,
    summary                text        NOT NULL,
    opened_at              timestamptz NOT NULL,
    notification_deadline  timestamptz NOT NULL,
    acknowledged_at        timestamptz,
    notified_at            timestamptz,
    closed_at              timestamptz,
    window_start           timestamptz NOT NULL,
    window_end             timestamptz NOT NULL,
    event_ids              uuid[]      NOT NULL,
    affected_subjects      bigint      NOT NULL,
    revision               bigint      NOT NULL DEFAULT 1
);
CREATE INDEX incidents_tenant_opened ON incidents (tenant_id, opened_at);
CREATE INDEX incidents_rule_key ON incidents (rule, tenant_id, rule_key, opened_at);

-- Timeline notes; author is an encoded veil.common.v1.Actor (ids and roles only).
CREATE TABLE incident_notes (
    incident_id  uuid        NOT NULL REFERENCES incidents (incident_id),
    seq          bigserial,
    created_at   timestamptz NOT NULL DEFAULT now(),
    author       bytea       NOT NULL,
    text         text        NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
