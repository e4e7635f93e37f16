-- The token index, keyed for write throughput: raw bytes instead of text (the 128-bit
-- token MAC and the 256-bit subject ref, half the size and compared with memcmp),
-- clustered by subject (a batch for one conversation lands on the same index pages; a
-- shred or an export reads one range) and a hash index for lookups by token alone.
-- Stored originals keep their associated data, which uses the text forms.
CREATE TABLE tokens_by_subject (
    tenant_id    uuid        NOT NULL,
    subject_ref  bytea       NOT NULL CHECK (length(subject_ref) = 32),
    token        bytea       NOT NULL CHECK (length(token) = 16),
    entity_type  text        NOT NULL,
    sealed_value bytea       CHECK (sealed_value IS NULL OR length(sealed_value) >= 28),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_ref, token)
);

INSERT INTO tokens_by_subject (tenant_id, subject_ref, token, entity_type, sealed_value, created_at)
SELECT tenant_id,
       decode(subject_ref, 'hex'),
       decode(translate(substr(token, 5), '-_', '+/') || '==', 'base64'),
       entity_type, sealed_value, created_at
FROM tokens;

DROP TABLE tokens;
ALTER TABLE tokens_by_subject RENAME TO tokens;
ALTER INDEX tokens_by_subject_pkey RENAME TO tokens_pkey;
CREATE INDEX tokens_token ON tokens USING hash (token);
