-- Data-subject requests (GDPR Art. 12-22, CCPA 1798.100-135) and their deadline
-- extensions.
--
-- No raw personal data: the subject is its subject_ref; the external subject id and
-- correction values live in the vault as tokens of the subject (so an erasure shreds
-- them) and only those tokens are kept here. After service.dsr_record_days a request
-- is minimized: subject_ref becomes a random unlinkable value and free text and tokens
-- are dropped, but the row stays as the record CCPA 7101 asks for.
--
-- request_type: veil.common.v1.RequestType; state: veil.common.v1.RequestState;
-- channel: veil.retention.v1.RequestChannel; jurisdiction: veil.common.v1.Jurisdiction.
CREATE TABLE requests (
    tenant_id             uuid        NOT NULL,
    request_id            uuid        NOT NULL,
    subject_ref           text        NOT NULL,
    request_type          smallint    NOT NULL CHECK (request_type BETWEEN 1 AND 8),
    state                 smallint    NOT NULL CHECK (state BETWEEN 1 AND 9),
    channel               smallint    NOT NULL,
    jurisdiction          smallint    NOT NULL,
    locale                text        NOT NULL DEFAULT '',
    purpose_keys          text[]      NOT NULL DEFAULT '{}',
    received_at           timestamptz NOT NULL,
    verified_at           timestamptz,
    -- Current deadline (extensions included) and the latest it may ever be.
    due_at                timestamptz NOT NULL,
    max_due_at            timestamptz NOT NULL,
    -- CCPA: acknowledge within 10 business days; the request_received event is the
    -- acknowledgement's trigger, acknowledged_at records when it went out.
    ack_due_at            timestamptz,
    acknowledged_at       timestamptz,
    completed_at          timestamptz,
    closing_reason        text        NOT NULL DEFAULT '',
    -- The legal hold that put the request ON_HOLD, while it is held.
    hold_id               text,
    certificate_id        text,
    export_ready          boolean     NOT NULL DEFAULT false,
    overdue               boolean     NOT NULL DEFAULT false,
    overdue_at            timestamptz,
    -- Who submitted (bots only see their own requests).
    submitted_kind        smallint    NOT NULL DEFAULT 0,
    submitted_by          text        NOT NULL,
    submitted_roles       smallint[]  NOT NULL DEFAULT '{}',
    idempotency_key       text,
    -- Identity verification: keyed hash of the one-time code, never the code.
    code_hash             bytea,
    code_expires_at       timestamptz,
    code_attempts         int         NOT NULL DEFAULT 0,
    code_max_attempts     int         NOT NULL DEFAULT 0,
    -- Vault token (store_value) of the external subject id, for peers that take only
    -- subject ids (consent's WithdrawConsent, SetPreferenceSignal).
    subject_token         text,
    -- Rectification: per correction the field named (a key or a vault token) and the
    -- vault token holding the corrected value.
    correction_fields     text[]      NOT NULL DEFAULT '{}',
    correction_tokens     text[]      NOT NULL DEFAULT '{}',
    minimized_at          timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);

-- One open request per subject and type (duplicate detection under concurrency).
CREATE UNIQUE INDEX requests_open_per_subject ON requests (tenant_id, subject_ref, request_type)
    WHERE state IN (1, 2, 3, 7, 8);
CREATE UNIQUE INDEX requests_idempotency ON requests (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX requests_by_due ON requests (due_at) WHERE state IN (1, 2, 3, 7, 8) AND NOT overdue;
CREATE INDEX requests_on_hold ON requests (tenant_id) WHERE state = 7;
CREATE INDEX requests_by_subject ON requests (tenant_id, subject_ref);
CREATE INDEX requests_for_minimizing ON requests (tenant_id, received_at) WHERE minimized_at IS NULL;

CREATE TABLE request_extensions (
    tenant_id       uuid        NOT NULL,
    request_id      uuid        NOT NULL,
    seq             int         NOT NULL,
    extended_by_secs bigint     NOT NULL CHECK (extended_by_secs > 0),
    reason          text        NOT NULL,
    extended_at     timestamptz NOT NULL DEFAULT now(),
    actor_kind      smallint    NOT NULL DEFAULT 0,
    actor_id        text        NOT NULL,
    actor_roles     smallint[]  NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, request_id, seq),
    FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, request_id)
);
