-- The full consent model: purpose details, recipients, versioned notices, consent records
-- with their ISO/IEC TS 27560 fields, signed receipts, preference signals, notices served,
-- controller settings and the registry of replicas that share the decision cache.

ALTER TABLE purposes
    ADD COLUMN data_categories       text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN retention_secs        bigint,
    -- [[jurisdiction, consent_default], ...] as proto enum numbers.
    ADD COLUMN defaults              jsonb   NOT NULL DEFAULT '[]',
    ADD COLUMN withdrawal_method     text    NOT NULL DEFAULT '',
    ADD COLUMN recipient_keys        text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN opted_out_by          int[]   NOT NULL DEFAULT '{}',
    ADD COLUMN consent_validity_secs bigint,
    ADD COLUMN archived              boolean NOT NULL DEFAULT false;

CREATE TABLE controllers (
    tenant_id            uuid        PRIMARY KEY,
    name                 text        NOT NULL DEFAULT '',
    contact              text        NOT NULL DEFAULT '',
    default_locale       text        NOT NULL DEFAULT '',
    default_jurisdiction int         NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recipients (
    tenant_id          uuid        NOT NULL,
    key                text        NOT NULL,
    name               text        NOT NULL,
    kind               int         NOT NULL,
    country            text        NOT NULL DEFAULT '',
    transfer_mechanism text        NOT NULL DEFAULT '',
    description        text        NOT NULL DEFAULT '',
    url                text        NOT NULL DEFAULT '',
    data_sharing_terms text        NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE notices (
    id             uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    kind           int         NOT NULL,
    locale         text        NOT NULL,
    version        int         NOT NULL,
    title          text        NOT NULL,
    body           text        NOT NULL,
    url            text        NOT NULL DEFAULT '',
    content_sha256 text        NOT NULL,
    purpose_keys   text[]      NOT NULL DEFAULT '{}',
    effective_at   timestamptz NOT NULL,
    published_at   timestamptz NOT NULL DEFAULT now(),
    published_by   jsonb,
    UNIQUE (tenant_id, kind, locale, version)
);

-- A published notice is evidence of what subjects were told: it never changes.
CREATE FUNCTION notices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'published notices are immutable' USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER notices_immutable BEFORE UPDATE OR DELETE ON notices
    FOR EACH ROW EXECUTE FUNCTION notices_immutable();

CREATE TABLE receipts (
    id               uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    subject_ref      text        NOT NULL,
    key_id           text        NOT NULL,
    -- Null once the subject is erased (the JWS names the subject_ref); the hash stays.
    jws              text,
    jws_sha256       text        NOT NULL,
    issued_at        timestamptz NOT NULL,
    idempotency_key  text,
    -- SHA-256 of the request a retry must repeat to get this result back.
    request_sha256   text,
    erased_at        timestamptz
);
CREATE UNIQUE INDEX receipts_idempotency ON receipts (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX receipts_subject ON receipts (tenant_id, subject_ref);

ALTER TABLE consent_events
    ADD COLUMN event_type           int         NOT NULL DEFAULT 0,
    ADD COLUMN purpose_version      bigint      NOT NULL DEFAULT 1,
    ADD COLUMN legal_basis          int         NOT NULL DEFAULT 0,
    ADD COLUMN pii_categories       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN recipient_keys       text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN notice_id            uuid        REFERENCES notices (id),
    ADD COLUMN notice_version       int         NOT NULL DEFAULT 0,
    ADD COLUMN notice_sha256        text        NOT NULL DEFAULT '',
    ADD COLUMN language             text        NOT NULL DEFAULT '',
    ADD COLUMN collection_method    int         NOT NULL DEFAULT 0,
    ADD COLUMN retention_secs       bigint,
    ADD COLUMN jurisdiction         int         NOT NULL DEFAULT 0,
    ADD COLUMN withdrawal_method    text        NOT NULL DEFAULT '',
    ADD COLUMN event_time           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN valid_from           timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN expires_at           timestamptz,
    ADD COLUMN receipt_id           uuid        REFERENCES receipts (id),
    ADD COLUMN supersedes_record_id uuid,
    ADD COLUMN recorded_by          jsonb,
    ADD COLUMN evidence             jsonb,
    ADD COLUMN controller_name      text        NOT NULL DEFAULT '',
    ADD COLUMN controller_contact   text        NOT NULL DEFAULT '',
    ADD COLUMN preference_conflict  boolean     NOT NULL DEFAULT false,
    ADD COLUMN erased_at            timestamptz,
    -- Insertion order; writes for one subject are serialized, so the highest seq is the
    -- subject's current record for a purpose.
    ADD COLUMN seq                  bigserial;

CREATE INDEX consent_events_current ON consent_events (tenant_id, subject_ref, purpose_key, seq DESC);
CREATE INDEX consent_events_receipt ON consent_events (receipt_id);
CREATE INDEX consent_events_history ON consent_events (tenant_id, subject_ref, event_time DESC, id DESC);

-- Consent records are append-only. The only change allowed is erasure: replacing the
-- subject link and dropping the evidence, once.
CREATE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.erased_at IS NULL AND NEW.erased_at IS NOT NULL
       AND
            (NEW.id, NEW.tenant_id, NEW.purpose_key, NEW.state, NEW.event_type,
             NEW.purpose_version, NEW.legal_basis, NEW.pii_categories, NEW.recipient_keys,
             NEW.notice_id, NEW.notice_version, NEW.notice_sha256, NEW.language,
             NEW.collection_method, NEW.retention_secs, NEW.jurisdiction,
             NEW.withdrawal_method, NEW.event_time, NEW.valid_from, NEW.expires_at,
             NEW.receipt_id, NEW.supersedes_record_id, NEW.controller_name,
             NEW.controller_contact, NEW.preference_conflict, NEW.created_at, NEW.seq)
           IS NOT DISTINCT FROM
            (OLD.id, OLD.tenant_id, OLD.purpose_key, OLD.state, OLD.event_type,
             OLD.purpose_version, OLD.legal_basis, OLD.pii_categories, OLD.recipient_keys,
             OLD.notice_id, OLD.notice_version, OLD.notice_sha256, OLD.language,
             OLD.collection_method, OLD.retention_secs, OLD.jurisdiction,
             OLD.withdrawal_method, OLD.event_time, OLD.valid_from, OLD.expires_at,
             OLD.receipt_id, OLD.supersedes_record_id, OLD.controller_name,
             OLD.controller_contact, OLD.preference_conflict, OLD.created_at, OLD.seq)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'consent records are append-only' USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION consent_events_append_only();

CREATE TABLE preference_signals (
    id          uuid        PRIMARY KEY,
    tenant_id   uuid        NOT NULL,
    subject_ref text        NOT NULL,
    signal      int         NOT NULL,
    enabled     boolean     NOT NULL,
    source      int         NOT NULL,
    observed_at timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz,
    seq         bigserial
);
CREATE INDEX preference_signals_latest
    ON preference_signals (tenant_id, subject_ref, signal, observed_at DESC, seq DESC);

CREATE TABLE notices_served (
    id              uuid        PRIMARY KEY,
    tenant_id       uuid        NOT NULL,
    subject_ref     text        NOT NULL,
    notice_id       uuid        NOT NULL REFERENCES notices (id),
    conversation_id text        NOT NULL DEFAULT '',
    channel         int         NOT NULL,
    served_at       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    erased_at       timestamptz
);
CREATE INDEX notices_served_subject ON notices_served (tenant_id, subject_ref, served_at DESC);

-- Replicas whose in-process decision caches a writer must invalidate before it answers.
CREATE TABLE cache_replicas (
    replica_id uuid        PRIMARY KEY,
    seen_at    timestamptz NOT NULL DEFAULT now()
);
