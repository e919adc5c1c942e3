-- new_term baselines of the detection engine (internal/detect): which
-- combination of fields (term) a group has been seen with, and when. The row
-- with term = '' records when the group itself was first seen (its learning
-- period starts there). Loaded at analyzer start so a restart does not
-- re-alert; the engine writes a row when a term is new or its last_seen
-- moved by more than a day. Readers aggregate: min(first_seen),
-- max(last_seen) GROUP BY the key.
CREATE TABLE IF NOT EXISTS {db}.detection_baselines (
    rule_id LowCardinality(String),
    tenant LowCardinality(String),
    group_key String,
    term String,
    first_seen DateTime,
    last_seen DateTime
) ENGINE = ReplacingMergeTree(last_seen)
ORDER BY (rule_id, tenant, group_key, term);
