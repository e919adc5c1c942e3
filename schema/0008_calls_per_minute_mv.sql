CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_per_minute_mv
TO {db}.calls_per_minute
AS SELECT
    toStartOfMinute(ts) AS minute,
    tenant, agent_id, server_name, tool_name, method, outcome,
    uniqExactState(event_id) AS calls_state
FROM {db}.events
WHERE kind = 'message'
GROUP BY minute, tenant, agent_id, server_name, tool_name, method, outcome
