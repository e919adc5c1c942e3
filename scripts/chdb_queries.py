#!/usr/bin/env python3
"""Replays query corpora on a current ClickHouse engine (test infrastructure only).

A corpus (written by TestQueryCorpus in internal/store and by
TestPluginQueryCorpus in grafana-plugin/pkg/plugin, with
MCPWATCH_QUERY_CORPUS=dir) holds, in the order the code ran them on
ClickHouse 18.16, every statement of the analyzer, the incident store, the
rollup sealer, the detect baseline store and the plugin backend: its call
site, SQL and bound arguments, the rows the code scanned (queries) or
inserted (batches). This script runs the same statements in the same order
in a chdb (in-process ClickHouse 26.x) session:

- exec: the SQL with its arguments bound as clickhouse-go binds them;
- batch: INSERT INTO t (columns) FORMAT JSONEachRow with the recorded rows;
- query: run and, where the corpus says so, compare the row set with what
  the code scanned on 18.16 (values normalised: numbers, strings, DateTime
  as 'YYYY-MM-DD hh:mm:ss' UTC, arrays; duplicate rows count once);
- restore: replaces a table filled from the server clock (dirty marks) by
  18.16's content, so that both engines decide the same;
- schema: applies schema/*.sql (single-server profile) to the database.

Then every statement of the cluster profile (cluster_ddl) must parse
(EXPLAIN AST; chdb has no ZooKeeper to run ON CLUSTER). Exits non-zero when
a statement fails or a result differs.

Usage: chdb_queries.py corpus.json...
"""
import glob
import json
import os
import re
import shutil
import sys
import tempfile

os.environ["TZ"] = "UTC"

from chdb import session as chs  # noqa: E402

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "schema")


def quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0") + "'"


def literal(a):
    """A bound argument as clickhouse-go's bind.go formats it for a server
    whose timezone is UTC (the test servers')."""
    t, v = a["t"], a.get("v")
    if t == "s":
        return quote(v)
    if t == "n":
        return str(v)
    if t == "a":
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if t == "time":
        loc, unix = a.get("loc", ""), a.get("unix", 0)
        if loc in ("", "Local"):
            return "toDateTime(0)" if unix == 0 else "toDateTime('%d')" % unix
        if loc == "UTC":
            return "toDateTime('%s')" % v
        return "toDateTime('%s', '%s')" % (v, loc)
    raise ValueError("unknown argument type %r" % t)


def bind(sql, args):
    """Replaces each positional ? outside quotes, identifiers and comments."""
    out, i, n, k = [], 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'`\"":
            j = i + 1
            while j < n and sql[j] != c:
                j += 2 if sql[j] == "\\" else 1
            out.append(sql[i:j + 1])
            i = j + 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
            continue
        if c == "?":
            if k >= len(args):
                raise ValueError("more ? than arguments")
            out.append(literal(args[k]))
            k += 1
            i += 1
            continue
        out.append(c)
        i += 1
    if k != len(args):
        raise ValueError("%d arguments for %d placeholders" % (len(args), k))
    return "".join(out)


def norm(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return int(v) if v.is_integer() else round(v, 9)
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def rowset(rows):
    return sorted({json.dumps(norm(r), sort_keys=True, ensure_ascii=False) for r in rows})


def json_lines(columns, rows):
    return "\n".join(json.dumps(dict(zip(columns, r)), ensure_ascii=False) for r in rows)


def statements(sql):
    body = "\n".join(l for l in sql.splitlines() if not l.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


class Run:
    def __init__(self, name):
        self.name, self.failures, self.ran, self.compared = name, 0, 0, 0

    def fail(self, e, msg):
        self.failures += 1
        where = e.get("site") or e.get("kind")
        print("chdb_queries: FAIL %s %s (%s): %s\n  sql: %s" % (self.name, where, e.get("func", ""), msg, " ".join(e.get("sql", "").split())[:600]), file=sys.stderr)


def replay(path):
    corpus = json.load(open(path))
    db = corpus["db"]
    run = Run(os.path.basename(path))
    tmp = tempfile.mkdtemp(prefix="mcpwatch-chdb-q-")
    try:
        sess = chs.Session(tmp)
        tz = str(sess.query("SELECT timezone()", "TabSeparated")).strip()
        if tz != "UTC":
            print("chdb_queries: session timezone is %s, want UTC" % tz, file=sys.stderr)
            return 1, run
        for e in corpus["entries"]:
            kind = e["kind"]
            try:
                if kind == "schema":
                    sess.query("CREATE DATABASE IF NOT EXISTS `%s`" % db)
                    for f in sorted(glob.glob(os.path.join(SCHEMA_DIR, "[0-9][0-9][0-9][0-9]_*.sql"))):
                        for st in statements(open(f).read().replace("{db}", "`%s`" % db)):
                            sess.query(st)
                elif kind == "exec":
                    sess.query(bind(e["sql"], e.get("args") or []))
                elif kind == "batch":
                    if e["rows"]:
                        sess.query("INSERT INTO %s (%s) FORMAT JSONEachRow\n%s\n" % (e["table"], ", ".join(e["columns"]), json_lines(e["columns"], e["rows"])))
                elif kind == "restore":
                    sess.query("TRUNCATE TABLE %s" % e["table"])
                    if e["rows"]:
                        src = "format(JSONEachRow, %s, $$%s$$)" % (quote(e["args"][0]["v"]), json_lines(e["columns"], e["rows"]))
                        sess.query(e["sql"].replace("{input}", src))
                elif kind == "query":
                    res = sess.query(bind(e["sql"], e.get("args") or []), "JSONCompact")
                    got = json.loads(str(res) or '{"data": []}')["data"]
                    if e.get("compare"):
                        run.compared += 1
                        want, have = rowset(e["rows"]), rowset(got)
                        if want != have:
                            only18 = [r for r in want if r not in have][:5]
                            only26 = [r for r in have if r not in want][:5]
                            run.fail(e, "results differ: %d rows on 18.16, %d on chdb\n  only on 18.16: %s\n  only on chdb:  %s" % (len(want), len(have), only18, only26))
                else:
                    run.fail(e, "unknown entry kind %r" % kind)
                    continue
                run.ran += 1
            except Exception as ex:  # noqa: BLE001 - report and go on
                run.fail(e, "failed on chdb: %s" % str(ex).strip().splitlines()[0][:400])
        parsed = 0
        for st in corpus.get("cluster_ddl") or []:
            try:
                sess.query("EXPLAIN AST " + st)
                parsed += 1
            except Exception as ex:  # noqa: BLE001
                run.fail({"kind": "cluster_ddl", "sql": st}, "does not parse: %s" % str(ex).strip().splitlines()[0][:400])
        print("chdb_queries: %s: %d statements run, %d results compared, %d cluster statements parsed, %d failure(s)" % (run.name, run.ran, run.compared, parsed, run.failures))
        sess.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return (1 if run.failures else 0), run


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    rc = 0
    for p in sys.argv[1:]:
        r, _ = replay(p)
        rc |= r
    print("chdb_queries: ok" if rc == 0 else "chdb_queries: FAILED")
    return rc


if __name__ == "__main__":
    sys.exit(main())
