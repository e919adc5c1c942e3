-- Per (tenant, minute): the newest seal version (written by the sealer after
-- the minute's calls_sealed rows) and the newest "dirty" mark (written by
-- calls_dirty_mv, 0012, whenever events of that minute are inserted: late
-- events and replays alike). All are nanosecond timestamps. A minute is
-- clean, and read from calls_sealed, while maxMerge(sealed) > maxMerge(dirty);
-- otherwise readers use uniqExactMerge over calls_per_minute and the sealer
-- seals it (again). hour_sealed, on the row of an hour's first minute, is the
-- version of that hour's calls_sealed_hourly rows (0014): the hour is clean
-- while it is newer than the dirty marks of all its minutes.
CREATE TABLE IF NOT EXISTS {db}.calls_seal_state (
    tenant LowCardinality(String),
    minute DateTime,
    sealed AggregateFunction(max, UInt64),
    dirty AggregateFunction(max, UInt64),
    hour_sealed AggregateFunction(max, UInt64)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (tenant, minute)
