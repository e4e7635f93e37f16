-- Retention policies, legal holds and sweeps. No raw personal data: subjects appear only
-- as subject_ref (HMAC pseudonyms); reasons and case references are officers' notes.

-- One policy per tenant x data category x purpose ('' = every purpose without its own).
CREATE TABLE policies (
    policy_id      uuid        PRIMARY KEY,
    tenant_id      uuid        NOT NULL,
    category       int         NOT NULL,
    purpose_key    text        NOT NULL DEFAULT '',
    period_secs    bigint      NOT NULL CHECK (period_secs >= 3600),
    action         int         NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Who last changed it (veil.common.v1.Actor, flattened).
    actor_kind     int         NOT NULL DEFAULT 0,
    actor_id       text        NOT NULL DEFAULT '',
    actor_roles    int[]       NOT NULL DEFAULT '{}',
    UNIQUE (tenant_id, category, purpose_key)
);

-- Legal holds; subject_ref NULL means the whole tenant. Rows are never deleted: a
-- released hold stays as the record of what was held, when and why.
CREATE TABLE legal_holds (
    hold_id             uuid        PRIMARY KEY,
    tenant_id           uuid        NOT NULL,
    subject_ref         text,
    reason              text        NOT NULL,
    case_reference      text        NOT NULL DEFAULT '',
    placed_at           timestamptz NOT NULL DEFAULT now(),
    placed_by_kind      int         NOT NULL DEFAULT 0,
    placed_by_id        text        NOT NULL DEFAULT '',
    placed_by_roles     int[]       NOT NULL DEFAULT '{}',
    expires_at          timestamptz,
    released_at         timestamptz,
    released_by_kind    int         NOT NULL DEFAULT 0,
    released_by_id      text        NOT NULL DEFAULT '',
    released_by_roles   int[]       NOT NULL DEFAULT '{}',
    release_reason      text        NOT NULL DEFAULT ''
);

-- The hot path: "is this subject (or the tenant) held right now?".
CREATE INDEX legal_holds_active ON legal_holds (tenant_id, subject_ref)
    WHERE released_at IS NULL;
-- Listing, newest first.
CREATE INDEX legal_holds_listing ON legal_holds (tenant_id, placed_at DESC, hold_id DESC);

-- A real (not dry-run) sweep of one tenant. Unfinished rows are resumed on start.
CREATE TABLE sweeps (
    sweep_id         uuid        PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    -- 'manual' (RunSweep) or 'schedule'.
    trigger          text        NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    blocked_by_hold  boolean     NOT NULL DEFAULT false
);

CREATE INDEX sweeps_unfinished ON sweeps (started_at) WHERE finished_at IS NULL;

-- One policy's part of a sweep, fixed when the sweep starts (cutoff included), so a
-- resumed sweep asks the owning service for exactly the same thing again.
CREATE TABLE sweep_steps (
    sweep_id      uuid        NOT NULL REFERENCES sweeps (sweep_id) ON DELETE CASCADE,
    ordinal       int         NOT NULL,
    policy_id     uuid        NOT NULL,
    service       int         NOT NULL,
    category      int         NOT NULL,
    purpose_key   text        NOT NULL,
    action        int         NOT NULL,
    cutoff        timestamptz NOT NULL,
    -- Counts summed over the batches done so far, per kind.
    counts        jsonb       NOT NULL DEFAULT '{}',
    held_skipped  bigint      NOT NULL DEFAULT 0,
    batches       int         NOT NULL DEFAULT 0,
    done          boolean     NOT NULL DEFAULT false,
    error         text        NOT NULL DEFAULT '',
    PRIMARY KEY (sweep_id, ordinal)
);
