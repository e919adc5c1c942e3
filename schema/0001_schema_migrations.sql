-- Applied migrations; one row per version. ReplacingMergeTree so a re-run
-- of the runner after a crash between apply and record stays idempotent.
CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
