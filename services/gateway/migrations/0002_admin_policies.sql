-- Admin API: tenant state, why a key was revoked, and versioned
-- privacy policies (one row per version; the newest is current).
ALTER TABLE tenants ADD COLUMN state int NOT NULL DEFAULT 1;

ALTER TABLE api_keys ADD COLUMN revoke_reason text;

CREATE TABLE privacy_policies (
    tenant_id  uuid        NOT NULL REFERENCES tenants (tenant_id),
    version    bigint      NOT NULL CHECK (version > 0),
    policy     jsonb       NOT NULL,
    updated_by jsonb       NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);
