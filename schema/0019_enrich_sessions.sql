-- Derived sessions of the analyzer's ingest role (internal/enrich): for
-- events with neither an MCP session id nor a conversation id, the calls of
-- one agent to one server separated by at most the idle gap form one
-- session. session_key is a hash of (tenant, agent_id, server_name,
-- start_ns), start_ns being the event time (unix ns) of the event that
-- opened the session; first_ns/last_ns bound the event times it holds so far;
-- updated_at is the wall-clock time of the write. Rows carry the writer's
-- cumulative state (the row with the greatest last_ns holds it all);
-- readers aggregate: min(first_ns), max(last_ns) GROUP BY the key.
-- Partitioned by the month of the write, as enrich_servers.
CREATE TABLE IF NOT EXISTS {db}.enrich_sessions (
    tenant LowCardinality(String),
    agent_id String,
    server_name String,
    start_ns UInt64,
    session_key String,
    first_ns UInt64,
    last_ns UInt64,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(last_ns)
PARTITION BY toYYYYMM(updated_at)
ORDER BY (tenant, agent_id, server_name, start_ns);
