-- Every incident change is a new row with a higher version; read the
-- current state with FINAL or argMax(…, version) GROUP BY incident_id.
CREATE TABLE IF NOT EXISTS {db}.incidents (
    incident_id String,
    version UInt64,
    tenant LowCardinality(String),
    rule_id LowCardinality(String),
    rule_title String,
    group_key String,
    title String,
    summary String,
    status Enum8('open' = 1, 'acknowledged' = 2, 'resolved' = 3, 'suppressed' = 4),
    severity Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    tags Array(String),
    finding_count UInt32,
    first_seen DateTime,
    last_seen DateTime,
    agent_id String,
    user_id String,
    session_key String,
    server_name String,
    tool_name String,
    assignee String,
    suppressed_until DateTime,
    updated_by String,
    note String,
    created_at DateTime,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (tenant, incident_id)
