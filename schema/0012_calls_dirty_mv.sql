-- Marks each minute that receives events as dirty at insert time (the end of
-- the current second, in nanoseconds), so the sealer re-seals it and readers
-- stop trusting its sealed counts until then.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.calls_dirty_mv
TO {db}.calls_seal_state
AS SELECT
    tenant,
    toStartOfMinute(ts) AS minute,
    maxState(toUInt64(0)) AS sealed,
    maxState(toUInt64(now()) * 1000000000 + 999999999) AS dirty,
    maxState(toUInt64(0)) AS hour_sealed
FROM {db}.events
WHERE kind = 'message'
GROUP BY tenant, minute
