-- Consent: purposes and the append-only consent event log (walking skeleton; the full
-- model of notices, receipts and preference signals arrives with the consent issue).
CREATE TABLE purposes (
    tenant_id        uuid        NOT NULL,
    key              text        NOT NULL,
    name             text        NOT NULL,
    description      text        NOT NULL DEFAULT '',
    legal_basis      int         NOT NULL,
    consent_required boolean     NOT NULL,
    version          bigint      NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE consent_events (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    subject_ref text        NOT NULL,
    purpose_key text        NOT NULL,
    state       int         NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, purpose_key) REFERENCES purposes (tenant_id, key)
);

CREATE INDEX consent_events_latest ON consent_events (tenant_id, subject_ref, purpose_key, created_at DESC);
