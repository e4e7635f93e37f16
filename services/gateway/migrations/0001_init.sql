-- Gateway: tenants, API keys (hashes only) and redacted transcripts (never raw text).
CREATE TABLE tenants (
    tenant_id            uuid        PRIMARY KEY,
    name                 text        NOT NULL,
    slug                 text        NOT NULL UNIQUE,
    default_jurisdiction int         NOT NULL DEFAULT 0,
    default_locale       text        NOT NULL DEFAULT 'en',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id      text        PRIMARY KEY,
    tenant_id   uuid        NOT NULL REFERENCES tenants (tenant_id),
    name        text        NOT NULL,
    secret_hash bytea       NOT NULL,
    roles       text[]      NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE transcript_messages (
    message_id      uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL REFERENCES tenants (tenant_id),
    conversation_id text        NOT NULL,
    subject_ref     text        NOT NULL,
    turn_index      bigint      NOT NULL,
    role            int         NOT NULL,
    redacted_text   text        NOT NULL,
    entity_counts   jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, conversation_id, turn_index)
);

CREATE INDEX transcript_subject ON transcript_messages (tenant_id, subject_ref);
