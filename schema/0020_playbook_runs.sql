-- Playbook runs of the respond role (internal/playbook, docs/architecture.md): every
-- change of a run is a new row with a higher version; read the current state
-- with FINAL (or argMax(…, version) GROUP BY run_id). The owner of the
-- incident's findings partition drives the run and writes its rows; a new
-- owner loads the runs that are not finished and resumes them.
-- run_id is deterministic (playbook + incident); rule_id and group_key are
-- the incident's key, so an owner finds its runs without the incidents.
-- steps is the JSON array of the steps' states (status, attempts, output,
-- approval actor/note/deadline, idempotency key), as the API shows it.
-- version is the writer's wall clock in ns, at least the last version + 1.
CREATE TABLE IF NOT EXISTS {db}.playbook_runs (
    run_id String,
    version UInt64,
    tenant LowCardinality(String),
    rule_id LowCardinality(String),
    group_key String,
    incident_id String,
    playbook String,
    status Enum8('running' = 1, 'waiting_approval' = 2, 'completed' = 3, 'aborted' = 4, 'failed' = 5),
    steps String,
    created_at DateTime,
    updated_at DateTime
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(created_at)
ORDER BY (tenant, rule_id, group_key, run_id);
