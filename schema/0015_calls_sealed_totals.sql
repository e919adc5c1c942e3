-- Sealed per-minute call counts by outcome and method only: the rows of
-- calls_sealed (0010) summed over agents, servers and tools, written by the
-- same seal before the same version is recorded, so a time series of all
-- calls reads a few rows per minute instead of one per agent and tool.
CREATE TABLE IF NOT EXISTS {db}.calls_sealed_totals (
    minute DateTime,
    tenant LowCardinality(String),
    method LowCardinality(String),
    outcome Enum8('ok' = 1, 'error' = 2, 'tool_error' = 3, 'denied' = 4),
    calls UInt64,
    version UInt64
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, minute, version, method, outcome)
