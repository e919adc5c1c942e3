-- The per-minute rollup counts calls, not observations (docs/event.md,
-- "call_id"): the client, server and gateway observations of one call
-- share a call_id, so uniqExact over it counts the call once within a
-- bucket, and an observation tagged duplicate_observation (fastmcp's CLIENT
-- span around the MCP SDK's own) is not counted at all. Rows from before
-- 0016 have no call_id and are counted by event_id, as before, so the
-- existing states stay valid (a replay still collapses: both ids are
-- deterministic). Observations of one call whose agent, server, tool or
-- outcome differ fall in different buckets; a merge across buckets
-- (uniqExactMerge) counts the call once, a sum of per-bucket counts does
-- not. Between the DROP and the CREATE an insert is not rolled up: run
-- migrations before ingest starts (the analyzer does).
DROP TABLE IF EXISTS {db}.calls_per_minute_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_per_minute_mv
TO {db}.calls_per_minute
AS SELECT
    toStartOfMinute(ts) AS minute,
    tenant, agent_id, server_name, tool_name, method, outcome,
    uniqExactState(if(call_id = '', event_id, call_id)) AS calls_state
FROM {db}.events
WHERE kind = 'message' AND NOT has(tags, 'duplicate_observation')
GROUP BY minute, tenant, agent_id, server_name, tool_name, method, outcome
