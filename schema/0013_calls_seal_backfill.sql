-- Marks every minute already in calls_per_minute as dirty, so the sealer
-- seals data written before 0012 existed. Idempotent: max states.
INSERT INTO {db}.calls_seal_state (tenant, minute, sealed, dirty, hour_sealed)
SELECT tenant, minute, maxState(toUInt64(0)), maxState(toUInt64(now()) * 1000000000 + 999999999), maxState(toUInt64(0))
FROM {db}.calls_per_minute
GROUP BY tenant, minute
