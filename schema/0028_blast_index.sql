-- The plugin's blast radius (docs/api.md of the plugin, "GET /blast-radius")
-- starts from a tool, a session or a redacted secret; events are ordered by
-- (tenant, agent_id, ts), so finding a tool's or a session's calls there
-- reads every event of the range. blast_index holds, per counted call
-- observation (kind 'message', not tagged duplicate_observation, as the pages
-- count), one narrow row per subject it belongs to, ordered by that subject:
--   'tool' \0 server_name \0 tool_name   (tool_name not empty)
--   'session' \0 session_key             (session_key not empty)
--   'secret' \0 fingerprint              (each [REDACTED:<kind>:<fingerprint>]
--                                          marker, as redaction_sightings, 0027)
-- so a blast radius reads its subject's rows by primary-key range, and only
-- the listed calls from events. Rows are not aggregated: counts stay exact
-- over any time range (a definition's range ends at a second) as
-- uniqExact(call_key) / uniqExact(agent_id) / ...; a replayed event (same
-- event_id, same ts) writes the same rows again, which collapse on merge and
-- are never counted twice before it. ClickHouse 18.16 has neither
-- projections nor data-skipping indexes; this table is the projection.
-- Granules of 1024 rows, not 8192: a session's few rows sit in one granule
-- of each part, so a lookup of 20 sessions read ~1.2M rows at 8192 and
-- ~110k at 1024 (10M-event bench set). The primary key leaves event_id out
-- (the sort key keeps it, for the replays to collapse), so its marks stay
-- small: about 40 bytes per 1024 rows held in memory.
-- cluster sharding key: cityHash64(tenant, agent_id)
CREATE TABLE IF NOT EXISTS {db}.blast_index (
    tenant LowCardinality(String),
    subject String,
    ts DateTime,
    ts_ns UInt64,
    event_id String,
    call_key String,
    agent_id String,
    session_key String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, subject, ts, event_id)
PRIMARY KEY (tenant, subject, ts)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.blast_index_mv
TO {db}.blast_index
AS SELECT
    tenant, subject, ts, ts_ns, event_id, if(call_id = '', event_id, call_id) AS call_key, agent_id, session_key
FROM {db}.events
ARRAY JOIN arrayFilter(x -> x != '', arrayConcat(
    [if(tool_name = '', '', concat('tool\0', toString(server_name), '\0', toString(tool_name))),
     if(session_key = '', '', concat('session\0', session_key))],
    arrayMap(m -> concat('secret\0', extract(m, ':([0-9a-f]+)\\]$')),
        if(arrayExists(x -> startsWith(x, 'secret:'), tags),
            extractAll(concat(arguments, '\n', result, '\n', session_id, '\n', user_id, '\n', toString(tool_name), '\n',
                arrayStringConcat(attr_values, '\n')), '\\[REDACTED:[a-z0-9_]+:[0-9a-f]+\\]'),
            emptyArrayString())))) AS subject
WHERE kind = 'message' AND NOT has(tags, 'duplicate_observation');

-- The events written before this migration (run before ingest starts, as
-- the analyzer does; an event the view also wrote collapses with its copy).
INSERT INTO {db}.blast_index (tenant, subject, ts, ts_ns, event_id, call_key, agent_id, session_key)
SELECT
    tenant, subject, ts, ts_ns, event_id, if(call_id = '', event_id, call_id) AS call_key, agent_id, session_key
FROM {db}.events
ARRAY JOIN arrayFilter(x -> x != '', arrayConcat(
    [if(tool_name = '', '', concat('tool\0', toString(server_name), '\0', toString(tool_name))),
     if(session_key = '', '', concat('session\0', session_key))],
    arrayMap(m -> concat('secret\0', extract(m, ':([0-9a-f]+)\\]$')),
        if(arrayExists(x -> startsWith(x, 'secret:'), tags),
            extractAll(concat(arguments, '\n', result, '\n', session_id, '\n', user_id, '\n', toString(tool_name), '\n',
                arrayStringConcat(attr_values, '\n')), '\\[REDACTED:[a-z0-9_]+:[0-9a-f]+\\]'),
            emptyArrayString())))) AS subject
WHERE kind = 'message' AND NOT has(tags, 'duplicate_observation')
