-- Per-second sums of the events each rule counts, per rule and key. The writer checks a
-- window against them first (at most window + 1 rows) and reads the events of the
-- window from rule_events only when the sum reaches the threshold: counting every
-- event of a 300 s window after each batch grew with the traffic.
CREATE TABLE rule_buckets (
    rule       text        NOT NULL,
    tenant_id  uuid        NOT NULL,
    rule_key   text        NOT NULL,
    second     timestamptz NOT NULL,
    events     bigint      NOT NULL,
    weight     bigint      NOT NULL,
    PRIMARY KEY (rule, tenant_id, rule_key, second)
);

INSERT INTO rule_buckets (rule, tenant_id, rule_key, second, events, weight)
SELECT rule, tenant_id, rule_key, to_timestamp(floor(extract(epoch FROM occurred_at))),
       count(*), sum(weight)
FROM rule_events
GROUP BY 1, 2, 3, 4;
