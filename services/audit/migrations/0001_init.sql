-- Audit: the append-only event log (walking skeleton). Entries hold no raw personal
-- data: ids, subject refs, event types and the encoded event envelope, which by contract
-- carries none either. The Merkle tree state arrives with the audit issue.
CREATE TABLE entries (
    idx          bigint      PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    tenant_id    uuid,
    subject_ref  text,
    event_type   text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    appended_at  timestamptz NOT NULL DEFAULT now(),
    envelope     bytea       NOT NULL,
    leaf_hash    bytea       NOT NULL
);

CREATE INDEX entries_tenant_subject ON entries (tenant_id, subject_ref, idx);
CREATE INDEX entries_tenant_type ON entries (tenant_id, event_type, idx);
