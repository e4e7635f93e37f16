-- A shred leaves a fence: when the subject was shredded (by the shredding replica's
-- clock). A call begun before it (less the clock skew allowed between replicas) is
-- refused: a Tokenize or PutRecord in flight across the shred would otherwise create
-- the subject a new data key and seal what it read before the shred under it, where no
-- erasure looks any more (the gateway refuses that message's turn). The key statements
-- check the fence; a subject shredded since counts as having no key.
--
-- The shred and the key's creation also meet on an advisory lock per subject: the
-- shred takes it exclusively before it writes the fence and deletes; the statement
-- that inserts data keys shares it for its transaction (through `erased_since`). So a
-- key created before the shred is deleted by it, and one created after it is refused.
CREATE TABLE subject_erasures (
    tenant_id   uuid        NOT NULL,
    subject_ref text        NOT NULL,
    erased_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, subject_ref)
);

-- The advisory lock of a subject (a collision only makes unrelated calls wait).
CREATE FUNCTION subject_lock_key(tenant uuid, subject text) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended(tenant::text || '/' || subject, 3301) $$;

-- Shares the locks of `subjects` for the calling transaction, then returns those of
-- them erased after `since`. The fence is read by a statement of its own, whose
-- snapshot is taken once the locks are granted: a shred that committed while this
-- waited is seen.
CREATE FUNCTION erased_since(tenant uuid, subjects text[], since timestamptz)
    RETURNS text[] LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(subject_lock_key(tenant, s))
    FROM unnest(subjects) AS s;
    RETURN ARRAY(
        SELECT e.subject_ref FROM subject_erasures e
        WHERE e.tenant_id = tenant AND e.subject_ref = ANY (subjects)
          AND e.erased_at > since);
END
$$;
