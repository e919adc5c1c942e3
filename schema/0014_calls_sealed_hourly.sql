-- Sealed per-hour call counts: the same as calls_sealed (0010) for whole
-- closed hours, so a day of calls is a few thousand rows. An hour's rows are
-- written in one insert at a version, recorded afterwards as hour_sealed in
-- calls_seal_state (0011); readers take them only for hours wholly inside
-- their range whose version is newer than every dirty mark of the hour.
CREATE TABLE IF NOT EXISTS {db}.calls_sealed_hourly (
    hour DateTime,
    tenant LowCardinality(String),
    agent_id String,
    server_name LowCardinality(String),
    tool_name LowCardinality(String),
    method LowCardinality(String),
    outcome Enum8('ok' = 1, 'error' = 2, 'tool_error' = 3, 'denied' = 4),
    calls UInt64,
    version UInt64
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(hour)
ORDER BY (tenant, hour, version, agent_id, server_name, tool_name, method, outcome)
