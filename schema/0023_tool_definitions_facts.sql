-- facts: what a definition says about its reach, as compact JSON
-- (internal/detect/defdiff: parameter names, hosts, emails, paths,
-- annotation hints, instruction markers), so the inventory shows what
-- changed from one definition of a tool to the next (params added or
-- removed, new hosts, ...) as mcp-tool-definition-changed judges it.
-- server_version: the version the server reported with the definition.
-- Rows written before this migration read '' for both; readers compute the
-- facts from description, input_schema and annotations then.
ALTER TABLE {db}.tool_definitions ADD COLUMN facts String;
ALTER TABLE {db}.tool_definitions ADD COLUMN server_version String
