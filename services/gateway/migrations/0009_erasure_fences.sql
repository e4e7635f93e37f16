-- An erasure leaves a fence: when the subject was erased (by the erasing replica's
-- clock). A message that began before it (less the clock skew allowed between replicas)
-- has its turn refused, so nothing a message read or computed before the erasure is
-- written after it. Without the fence, a turn already in flight when the erasure ran
-- committed right after it and outlived it.
--
-- The erasure and the turn writes also meet on an advisory lock per subject: the
-- erasure takes it exclusively before it writes the fence and deletes, a turn write
-- shares it while it checks the fence and inserts. So the erasure's delete sees every
-- turn written before it, and a turn written after it sees the fence.
CREATE TABLE subject_erasures (
    tenant_id   uuid        NOT NULL,
    subject_ref text        NOT NULL,
    erased_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, subject_ref)
);

-- The advisory lock of a subject (a collision only makes unrelated calls wait).
CREATE FUNCTION subject_lock_key(tenant uuid, subject text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended(tenant::text || '/' || subject, 6271) $$;

-- Per (tenant, subject, since) in order: whether the subject was erased after `since`.
-- Volatile and in PL/pgSQL on purpose: the fence is read by a statement of its own,
-- whose snapshot is taken after the shared lock was granted, so an erasure that
-- committed while the calling statement waited for the lock is seen.
CREATE FUNCTION erased_since(tenants uuid[], subjects text[], since timestamptz[])
    RETURNS bool[] LANGUAGE plpgsql VOLATILE AS $$
-- (A subject named twice is locked twice: cheaper than removing duplicates first. The
-- join costs half what a subquery per subject did.)
BEGIN
    PERFORM pg_advisory_xact_lock_shared(subject_lock_key(t, s))
    FROM unnest(tenants, subjects) AS x(t, s);
    RETURN ARRAY(
        SELECT COALESCE(e.erased_at > x.since, false)
        FROM unnest(tenants, subjects, since) WITH ORDINALITY AS x(t, s, since, n)
        LEFT JOIN subject_erasures e ON e.tenant_id = x.t AND e.subject_ref = x.s
        ORDER BY x.n);
END
$$;
