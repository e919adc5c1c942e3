#!/usr/bin/env python3
"""Schema check on a current ClickHouse engine (test infrastructure only).

Runs every schema/NNNN_*.sql migration, in order, in a chdb (in-process
ClickHouse 26.x) session with a temporary data path, replacing {db} by a
database name; runs them all a second time (migrations must be idempotent);
then checks that the calls_per_minute rollup does not count a replayed batch
twice. Exits non-zero on the first failure.

Usage: chdb_check.py [schema_dir]
"""
import glob
import os
import re
import shutil
import sys
import tempfile

from chdb import session as chs

DB = "mcpwatch_check"


def statements(sql):
    """Splits a migration into statements on ';' at the end of a line,
    ignoring '--' comment lines."""
    body = "\n".join(l for l in sql.splitlines() if not l.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def run(sess, sql, fmt="CSV"):
    return sess.query(sql, fmt)


def scalar(sess, sql):
    out = str(run(sess, sql, "TabSeparated")).strip()
    return out


ADD_COLUMN = re.compile(r"^ALTER\s+TABLE\s+(\w+)\.(\w+)\s+ADD\s+COLUMN\s+(\w+)\s", re.I | re.S)


def column_exists(sess, st):
    """True when st is ALTER TABLE db.t ADD COLUMN c and c exists."""
    m = ADD_COLUMN.match(st)
    if not m:
        return False
    db, table, col = m.groups()
    n = scalar(sess, f"SELECT count() FROM system.columns WHERE database = '{db}' AND table = '{table}' AND name = '{col}'")
    return int(n) > 0


def main():
    schema_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "schema")
    files = sorted(glob.glob(os.path.join(schema_dir, "[0-9][0-9][0-9][0-9]_*.sql")))
    if not files:
        print(f"chdb_check: no migrations in {schema_dir}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="mcpwatch-chdb-")
    failures = 0
    try:
        sess = chs.Session(tmp)
        print(f"chdb_check: ClickHouse {scalar(sess, 'SELECT version()')} (chdb)")
        run(sess, f"CREATE DATABASE IF NOT EXISTS {DB}")
        for round_ in (1, 2):
            for f in files:
                sql = open(f).read().replace("{db}", DB)
                for st in statements(sql):
                    try:
                        if column_exists(sess, st):
                            continue  # ADD COLUMN has no IF NOT EXISTS on 18.16; the runner skips it too
                        run(sess, st)
                    except Exception as e:  # noqa: BLE001 - report and go on
                        failures += 1
                        print(f"chdb_check: FAIL {os.path.basename(f)} (pass {round_}): {e}", file=sys.stderr)
            if failures:
                break
            print(f"chdb_check: pass {round_}: {len(files)} migrations applied")
        if not failures:
            failures += check_rollup_replay(sess)
        if not failures:
            failures += check_rollup_calls(sess)
        sess.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"chdb_check: {failures} failure(s)", file=sys.stderr)
        return 1
    print("chdb_check: ok")
    return 0


def check_rollup_replay(sess):
    """Inserts a batch of events twice (a replay) and checks that events
    collapse under FINAL and that the per-minute rollup counts each event id
    once."""
    tables = scalar(sess, f"SELECT groupArray(name) FROM system.tables WHERE database = '{DB}'")
    if "'events'" not in tables or "'calls_per_minute'" not in tables:
        print("chdb_check: events/calls_per_minute absent; rollup replay check skipped")
        return 0
    n = 200
    insert = (
        f"INSERT INTO {DB}.events (event_id, tenant, kind, ts, method, tool_name, agent_id, server_name, outcome) "
        f"SELECT concat('e', toString(number)), 't1', 'message', toDateTime('2026-01-01 00:00:00') + (number % 120), "
        f"'tools/call', concat('tool', toString(number % 3)), 'agent-1', 'srv', 'ok' FROM numbers({n})"
    )
    run(sess, insert)
    run(sess, insert)  # replay of the same batch
    failures = 0
    events = int(scalar(sess, f"SELECT count() FROM {DB}.events FINAL"))
    if events != n:
        print(f"chdb_check: FAIL events FINAL has {events} rows after a replay, want {n}", file=sys.stderr)
        failures += 1
    calls = int(scalar(sess, f"SELECT uniqExactMerge(calls_state) FROM {DB}.calls_per_minute"))
    if calls != n:
        print(f"chdb_check: FAIL calls_per_minute counts {calls} calls after a replay, want {n}", file=sys.stderr)
        failures += 1
    per_minute = scalar(
        sess,
        f"SELECT count() FROM (SELECT minute, uniqExactMerge(calls_state) AS c FROM {DB}.calls_per_minute GROUP BY minute)",
    )
    if int(per_minute) != 2:
        print(f"chdb_check: FAIL rollup has {per_minute} minutes, want 2", file=sys.stderr)
        failures += 1
    if not failures:
        print(f"chdb_check: rollup replay ok ({n} events inserted twice → {calls} calls)")
    return failures


def check_rollup_calls(sess):
    """Observations sharing a call_id count once; duplicate_observation is
    not counted; rows without a call_id count by event_id (schema 0017)."""
    cols = scalar(sess, f"SELECT count() FROM system.columns WHERE database = '{DB}' AND table = 'events' AND name = 'call_id'")
    if int(cols) == 0:
        print("chdb_check: events.call_id absent; rollup calls check skipped")
        return 0
    rows = [("o1", "call-1", "[]"), ("o2", "call-1", "[]"), ("o3", "call-1", "['duplicate_observation']"),
            ("o4", "", "[]"), ("o5", "o5", "['duplicate_observation']")]
    values = ", ".join(
        f"('{e}', '{c}', 't2', 'message', toDateTime('2026-01-02 00:00:00'), 'tools/call', 'x', 'a', 's', 'ok', {tags})"
        for e, c, tags in rows
    )
    insert = (f"INSERT INTO {DB}.events (event_id, call_id, tenant, kind, ts, method, tool_name, agent_id, server_name, outcome, tags) "
              f"VALUES {values}")
    run(sess, insert)
    run(sess, insert)  # replay
    calls = int(scalar(sess, f"SELECT uniqExactMerge(calls_state) FROM {DB}.calls_per_minute WHERE tenant = 't2'"))
    if calls != 2:
        print(f"chdb_check: FAIL calls_per_minute counts {calls} calls, want 2 (call-1 and o4)", file=sys.stderr)
        return 1
    print("chdb_check: rollup counts calls ok (5 observations, 2 calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
