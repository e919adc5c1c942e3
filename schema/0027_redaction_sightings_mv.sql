-- Every [REDACTED:<kind>:<fingerprint>] marker of an event's evidence and
-- identity fields, for events that redaction tagged secret:<kind>.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.redaction_sightings_mv
TO {db}.redaction_sightings
AS SELECT
    tenant,
    extract(marker, ':([0-9a-f]+)\\]$') AS fingerprint,
    extract(marker, '^\\[REDACTED:([a-z0-9_]+):') AS secret_kind,
    ts, event_id, agent_id, session_key, server_name, tool_name
FROM {db}.events
ARRAY JOIN extractAll(concat(arguments, '\n', result, '\n', session_id, '\n', user_id, '\n', toString(tool_name), '\n',
    arrayStringConcat(attr_values, '\n')), '\\[REDACTED:[a-z0-9_]+:[0-9a-f]+\\]') AS marker
WHERE arrayExists(x -> startsWith(x, 'secret:'), tags)
