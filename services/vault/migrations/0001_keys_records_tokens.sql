-- The vault's key hierarchy, encrypted records and token index.
--
-- Key material is never stored in the clear: tenant keys are wrapped by a master key
-- (held by the key provider, outside the database), subject data keys by the tenant's
-- key-encryption key. Deleting a subject_keys row is the crypto-shred: every record and
-- token value of that key becomes unreadable, in this database and in every copy of it.

-- Master key versions the vault has used; the material stays in the key provider.
-- state: 1 active, 2 decrypt-only, 3 retired (veil.vault.v1.KeyState).
CREATE TABLE master_keys (
    version         int         PRIMARY KEY CHECK (version > 0),
    state           smallint    NOT NULL CHECK (state IN (1, 2, 3)),
    provider_key_id text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
CREATE UNIQUE INDEX master_keys_one_active ON master_keys ((true)) WHERE state = 1;

-- Per-tenant keys wrapped by a master key: the key-encryption key ('tenant_kek',
-- versioned and rotated) and the deterministic token key ('token_key', never rotated so
-- tokens stay stable). A retired version keeps its row with the wrapped bytes erased.
CREATE TABLE tenant_keys (
    tenant_id      uuid        NOT NULL,
    purpose        text        NOT NULL CHECK (purpose IN ('tenant_kek', 'token_key')),
    version        int         NOT NULL CHECK (version > 0),
    state          smallint    NOT NULL CHECK (state IN (1, 2, 3)),
    master_version int         NOT NULL,
    wrapped        bytea       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    retired_at     timestamptz,
    PRIMARY KEY (tenant_id, purpose, version)
);
CREATE UNIQUE INDEX tenant_keys_one_active ON tenant_keys (tenant_id, purpose) WHERE state = 1;
CREATE INDEX tenant_keys_master ON tenant_keys (master_version) WHERE state <> 3;

-- One data key per subject, wrapped by a tenant KEK version. key_id names this key
-- generation: records carry it, so records sealed under a destroyed key stay unreadable
-- even after the subject gets a new key. record_count lets a shred report how many
-- records it destroyed without touching them.
CREATE TABLE subject_keys (
    tenant_id    uuid        NOT NULL,
    subject_ref  text        NOT NULL,
    key_id       uuid        NOT NULL UNIQUE,
    kek_version  int         NOT NULL,
    wrapped      bytea       NOT NULL CHECK (length(wrapped) = 60),
    record_count bigint      NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, subject_ref)
);
CREATE INDEX subject_keys_kek ON subject_keys (tenant_id, kek_version);

-- Encrypted records: sealed = nonce(12) || ciphertext || tag(16) under the subject data
-- key, bound to tenant | subject | record id | field.
CREATE TABLE records (
    tenant_id    uuid        NOT NULL,
    record_id    uuid        NOT NULL,
    subject_ref  text        NOT NULL,
    key_id       uuid        NOT NULL,
    category     text        NOT NULL,
    field        text        NOT NULL,
    content_type text        NOT NULL,
    size_bytes   bigint      NOT NULL,
    purpose_keys text[]      NOT NULL,
    labels       jsonb       NOT NULL,
    sealed       bytea       NOT NULL CHECK (length(sealed) >= 28),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    PRIMARY KEY (tenant_id, record_id)
);
CREATE INDEX records_subject ON records (tenant_id, subject_ref, record_id);
CREATE INDEX records_created ON records (tenant_id, created_at);

-- Token index: deterministic token -> the originals of each subject that produced it,
-- sealed under that subject's data key (NULL for one-way tokens).
CREATE TABLE tokens (
    tenant_id    uuid        NOT NULL,
    token        text        NOT NULL,
    subject_ref  text        NOT NULL,
    entity_type  text        NOT NULL,
    sealed_value bytea       CHECK (sealed_value IS NULL OR length(sealed_value) >= 28),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, token, subject_ref)
);
CREATE INDEX tokens_subject ON tokens (tenant_id, subject_ref, token);

-- Background rewraps after a rotation. level: 1 master (tenant keys under the master
-- key), 2 tenant (subject keys under a tenant KEK), as veil.events.v1.KeyLevel.
CREATE TABLE rewrap_jobs (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    level            smallint    NOT NULL CHECK (level IN (1, 2)),
    tenant_id        uuid,
    target_version   int         NOT NULL,
    previous_version int         NOT NULL,
    total            bigint      NOT NULL,
    done             bigint      NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    CHECK ((level = 1) = (tenant_id IS NULL))
);
CREATE INDEX rewrap_jobs_open ON rewrap_jobs (id) WHERE finished_at IS NULL;
CREATE INDEX rewrap_jobs_latest ON rewrap_jobs (level, tenant_id, id DESC);
