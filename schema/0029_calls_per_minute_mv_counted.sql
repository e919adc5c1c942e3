-- A call is counted at the first observation of its agent that the ingest
-- role sees (docs/event.md, "Counting calls"): the enrichment tags a later
-- observation of the same call and agent call_already_counted, and the
-- per-minute rollup skips it as it skips duplicate_observation (0017). The
-- rollup's buckets are (minute, agent, server, tool, method, outcome) and
-- totals sum them: the client's and the server's observation of one call
-- a few milliseconds apart across a minute boundary, or with different
-- outcomes, fell in two buckets and counted twice. Raw events and
-- detection keep every observation. Between the DROP and the CREATE an
-- insert is not rolled up: run migrations before ingest starts (the
-- analyzer does).
DROP TABLE IF EXISTS {db}.calls_per_minute_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_per_minute_mv
TO {db}.calls_per_minute
AS SELECT
    toStartOfMinute(ts) AS minute,
    tenant, agent_id, server_name, tool_name, method, outcome,
    uniqExactState(if(call_id = '', event_id, call_id)) AS calls_state
FROM {db}.events
WHERE kind = 'message' AND NOT has(tags, 'duplicate_observation') AND NOT has(tags, 'call_already_counted')
GROUP BY minute, tenant, agent_id, server_name, tool_name, method, outcome
