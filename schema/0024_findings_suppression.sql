-- Match-rule suppression (docs/rules.md "suppress"): the findings of one
-- (tenant, rule, group, suppress_key) within one window are stored as the
-- first of them (ts, event_ids), re-inserted with a higher count as later
-- ones arrive (ReplacingMergeTree by inserted_at, like every finding
-- version; the latest version also has the highest suppress_pos).
-- suppress_window is in seconds; suppress_pos is the respond role's
-- watermark in the findings partition (offset<<16 | index in the record).
-- Rows written before this migration read '' / 0: not suppressed.
ALTER TABLE {db}.findings ADD COLUMN suppress_key String AFTER incident_id;
ALTER TABLE {db}.findings ADD COLUMN suppress_window UInt32 AFTER suppress_key;
ALTER TABLE {db}.findings ADD COLUMN suppressed_count UInt32 AFTER suppress_window;
ALTER TABLE {db}.findings ADD COLUMN last_event_id String AFTER suppressed_count;
ALTER TABLE {db}.findings ADD COLUMN last_seen DateTime AFTER last_event_id;
ALTER TABLE {db}.findings ADD COLUMN suppress_pos Int64 AFTER last_seen;
