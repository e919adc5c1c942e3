-- Audit log of notification deliveries, playbook steps and approvals
-- (DESIGN §6). Append-only; one row per attempt or state change.
CREATE TABLE IF NOT EXISTS {db}.actions (
    action_id String,
    ts DateTime,
    tenant LowCardinality(String),
    incident_id String,
    kind Enum8('notification' = 1, 'playbook_step' = 2, 'approval' = 3, 'incident_change' = 4, 'playbook_run' = 5),
    target String,
    playbook String,
    step String,
    attempt UInt32,
    outcome LowCardinality(String),
    actor String,
    detail String,
    idempotency_key String
) ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(ts)
ORDER BY (tenant, incident_id, ts, action_id)
