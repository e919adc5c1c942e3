-- Server memory of the analyzer's ingest role (internal/enrich): which
-- server (name, version) was seen on which connection of an agent, so that
-- later calls of that connection that do not name their server get it.
-- One row per (tenant, agent, connection, server name, server version):
--   conn_kind 'session'   conn_target = MCP session id
--             'endpoint'  conn_client = client name, conn_target:conn_port = server address:port
--             'transport' conn_client = client name, conn_target = transport (no server address)
--             'agent'     the agent alone (conn_client, conn_target empty)
-- first_seen_ns/last_seen_ns are event times (unix ns); updated_at is the
-- wall-clock time of the write. Rows carry the writer's cumulative state,
-- so the row with the greatest last_seen_ns (the one ReplacingMergeTree
-- keeps) holds it all; readers still aggregate over what is not merged yet
-- (other months, other writers): min(first_seen_ns), max(last_seen_ns)
-- GROUP BY the key.
-- Partitioned by the month of the write (one partition per insert whatever
-- the event times); a key in use is written again at least every hour of
-- event time, so dropping old months forgets only what is no longer used.
CREATE TABLE IF NOT EXISTS {db}.enrich_servers (
    tenant LowCardinality(String),
    agent_id String,
    conn_kind Enum8('agent' = 0, 'session' = 1, 'endpoint' = 2, 'transport' = 3),
    conn_client String,
    conn_target String,
    conn_port UInt16,
    server_name String,
    server_version String,
    first_seen_ns UInt64,
    last_seen_ns UInt64,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(last_seen_ns)
PARTITION BY toYYYYMM(updated_at)
ORDER BY (tenant, agent_id, conn_kind, conn_client, conn_target, conn_port, server_name, server_version);
