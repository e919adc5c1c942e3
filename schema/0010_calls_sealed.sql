-- Sealed per-minute call counts: plain UInt64 counts the analyzer's sealer
-- (internal/rollup) computes with uniqExactMerge from calls_per_minute for
-- closed minutes, so pages can sum them instead of merging uniqExact states.
-- A minute is sealed whole, in one insert block, at a version (ns); the
-- version is recorded in calls_seal_state (0011) only after the rows are in.
-- Re-sealing writes the whole minute again at a higher version. Readers take
-- only the rows of the version calls_seal_state names for a minute that is
-- still clean, so older versions and rows of an interrupted seal are never
-- summed. Plain MergeTree on purpose: a Replacing merge could swap the
-- recorded version's rows for those of an unrecorded newer seal.
CREATE TABLE IF NOT EXISTS {db}.calls_sealed (
    minute DateTime,
    tenant LowCardinality(String),
    agent_id String,
    server_name LowCardinality(String),
    tool_name LowCardinality(String),
    method LowCardinality(String),
    outcome Enum8('ok' = 1, 'error' = 2, 'tool_error' = 3, 'denied' = 4),
    calls UInt64,
    version UInt64
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, minute, version, agent_id, server_name, tool_name, method, outcome)
