-- One row per detection hit (DESIGN §6). finding_id is deterministic, so a
-- replayed event that re-triggers a rule collapses on merge.
CREATE TABLE IF NOT EXISTS {db}.findings (
    finding_id String,
    tenant LowCardinality(String),
    ts DateTime,
    rule_id LowCardinality(String),
    rule_version String,
    rule_title String,
    rule_kind LowCardinality(String),
    severity Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    tags Array(String),
    group_key String,
    summary String,
    agent_id String,
    user_id String,
    session_key String,
    server_name LowCardinality(String),
    tool_name String,
    event_ids Array(String),
    evidence String,
    incident_id String,
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, rule_id, ts, finding_id)
