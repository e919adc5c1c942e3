-- Tool inventory: one row per (tenant, server_name, tool_name,
-- definition_hash). The analyzer carries first_seen forward from what it
-- already knows and writes a newer last_seen; ReplacingMergeTree keeps the
-- row with the greatest last_seen, so replays and repeated snapshots are
-- harmless. Read with FINAL or argMax(…, last_seen) GROUP BY the key.
CREATE TABLE IF NOT EXISTS {db}.tool_definitions (
    tenant LowCardinality(String),
    server_name LowCardinality(String),
    tool_name String,
    definition_hash String,
    first_seen DateTime,
    last_seen DateTime,
    description String,
    input_schema String,
    annotations String,
    source LowCardinality(String),
    first_event_id String
) ENGINE = ReplacingMergeTree(last_seen)
ORDER BY (tenant, server_name, tool_name, definition_hash)
