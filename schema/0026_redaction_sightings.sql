-- Where each redacted secret was seen (docs/event.md, "Redaction"; the
-- plugin's blast-radius page): one row per (event, redaction marker), so
-- "every agent, session and call that touched this secret" reads a few rows
-- instead of scanning every event's arguments and result. Filled by
-- 0027_redaction_sightings_mv.sql from events inserted after this migration.
CREATE TABLE IF NOT EXISTS {db}.redaction_sightings (
    tenant LowCardinality(String),
    fingerprint String,
    secret_kind String,
    ts DateTime,
    event_id String,
    agent_id String,
    session_key String,
    server_name LowCardinality(String),
    tool_name LowCardinality(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, fingerprint, ts, event_id)
