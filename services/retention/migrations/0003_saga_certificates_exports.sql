-- The erasure saga's per-service progress, deletion certificates and export jobs.
--
-- Nothing here is personal data in clear: subjects appear only as subject_ref (an HMAC),
-- counts are numbers, and export contents are never stored (they are assembled from the
-- owning services at download time).

-- One row per (request, service) that must report an erasure before the certificate is
-- issued. last_requested_at drives the retry of erasure_requested; done rows keep the
-- service's counts (item kind -> number) and completion time for the certificate.
CREATE TABLE saga_steps (
    tenant_id         uuid        NOT NULL,
    request_id        uuid        NOT NULL,
    service           text        NOT NULL CHECK (service IN ('gateway', 'vault', 'consent')),
    done              boolean     NOT NULL DEFAULT false,
    counts            jsonb       NOT NULL DEFAULT '{}'::jsonb,
    completed_at      timestamptz,
    error             text        NOT NULL DEFAULT '',
    attempts          int         NOT NULL DEFAULT 1,
    last_requested_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id, service)
);
-- The retry driver looks only at unfinished steps.
CREATE INDEX saga_steps_pending ON saga_steps (last_requested_at) WHERE NOT done;

-- Signed deletion certificates. certificate_json is exactly the signed JWS payload;
-- anchor_event_id is the retention.certificate_issued event that anchors its sha256 in
-- the audit log; audit_leaf_index is cached once audit has appended it.
CREATE TABLE deletion_certificates (
    certificate_id   uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    request_id       uuid        NOT NULL,
    subject_ref      text        NOT NULL,
    issued_at        timestamptz NOT NULL,
    certificate_json text        NOT NULL,
    jws              text        NOT NULL,
    key_id           text        NOT NULL,
    public_key       bytea       NOT NULL,
    sha256           text        NOT NULL,
    anchor_event_id  uuid        NOT NULL,
    audit_leaf_index bigint,
    UNIQUE (tenant_id, request_id)
);

-- Access and portability exports. Only the job is kept (when it was found collectable,
-- the size and sha256 of the JSON at that time, and when it expired); the contents are
-- collected again from the services at every download.
CREATE TABLE export_jobs (
    tenant_id    uuid        NOT NULL,
    request_id   uuid        NOT NULL,
    subject_ref  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    ready_at     timestamptz,
    sections     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error        text        NOT NULL DEFAULT '',
    attempts     int         NOT NULL DEFAULT 0,
    last_try_at  timestamptz,
    expired_at   timestamptz,
    PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX export_jobs_pending ON export_jobs (created_at) WHERE ready_at IS NULL;
CREATE INDEX export_jobs_live ON export_jobs (tenant_id, ready_at) WHERE expired_at IS NULL;
