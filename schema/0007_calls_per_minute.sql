-- Per-minute rollup for dashboards. The state is uniqExact(event_id), not a
-- plain count, so a replayed batch (same event ids) cannot inflate a bucket:
-- read calls with uniqExactMerge(calls_state).
CREATE TABLE IF NOT EXISTS {db}.calls_per_minute (
    minute DateTime,
    tenant LowCardinality(String),
    agent_id String,
    server_name LowCardinality(String),
    tool_name LowCardinality(String),
    method LowCardinality(String),
    outcome Enum8('ok' = 1, 'error' = 2, 'tool_error' = 3, 'denied' = 4),
    calls_state AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, minute, agent_id, server_name, tool_name, method, outcome)
