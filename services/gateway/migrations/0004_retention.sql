-- Retention's side of the gateway: subjects who obtained restriction of processing
-- (GDPR Art. 18), rows a retention sweep restricted or anonymized, the purposes a turn
-- was processed for (so purpose-specific retention can select turns), and the indexes a
-- sweep walks by age.

-- One row per restricted subject; the pipeline reads it by primary key on every turn, so
-- a restriction holds on every replica at once.
CREATE TABLE subject_restrictions (
    tenant_id     uuid        NOT NULL,
    subject_ref   text        NOT NULL,
    -- The data-subject request that restricted the subject (an id, no personal data).
    request_id    text        NOT NULL DEFAULT '',
    restricted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_ref)
);

-- Constant defaults and nullable columns: no table rewrite.
ALTER TABLE transcript_messages
    ADD COLUMN purposes      text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN restricted_at timestamptz,
    ADD COLUMN anonymized_at timestamptz;

ALTER TABLE conversation_pseudonyms ADD COLUMN restricted_at timestamptz;

CREATE INDEX transcript_created ON transcript_messages (tenant_id, created_at);
CREATE INDEX conversation_pseudonyms_created ON conversation_pseudonyms (tenant_id, created_at);
