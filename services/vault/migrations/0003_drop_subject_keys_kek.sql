-- subject_keys_kek (tenant_id, kek_version) served no query: the rewrap looks for
-- `kek_version <> target`, which no b-tree answers better than the primary key's
-- tenant prefix. It did mislead the planner: before the table's first ANALYZE it took
-- that index for "one row per tenant and KEK version" and looked subjects up by
-- scanning every subject key of the tenant and filtering (0.5 ms at 10,000 subjects,
-- growing with them) instead of using the primary key. Lookups by subject now have only
-- the primary key to use, and every new subject key updates one index less.
DROP INDEX subject_keys_kek;
