-- Conversation pseudonym maps: which placeholder stands for which vault token in a
-- conversation. The original values live only in the vault (encrypted under the
-- subject's data key); this table holds no personal data beyond the subject_ref.
CREATE TABLE conversation_pseudonyms (
    tenant_id       uuid        NOT NULL REFERENCES tenants (tenant_id),
    conversation_id text        NOT NULL,
    token           text        NOT NULL,
    placeholder     text        NOT NULL,
    entity_type     text        NOT NULL,
    number          int         NOT NULL,
    subject_ref     text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, conversation_id, token)
);

CREATE INDEX conversation_pseudonyms_placeholder
    ON conversation_pseudonyms (tenant_id, conversation_id, placeholder);
CREATE INDEX conversation_pseudonyms_subject ON conversation_pseudonyms (tenant_id, subject_ref);
