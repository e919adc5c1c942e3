-- call_id: the client, server and gateway observations of one MCP call share
-- it (derived from trace id + JSON-RPC request id + method, else the event
-- id; docs/event.md). Rows written before this migration read '': counts
-- take event_id for them (if(call_id = '', event_id, call_id)). No IF NOT
-- EXISTS on 18.16: the migration runner skips the ALTER when the column exists.
ALTER TABLE {db}.events ADD COLUMN call_id String AFTER request_id
