package plugin

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// TestPluginQueryCorpus runs every statement of the plugin backend through
// a recording connection on ClickHouse 18.16 over the seed data set, with
// closed minutes and hours sealed as the analyzer's sealer seals them, and
// fails when a call site of a statement in this package was not exercised.
// With MCPWATCH_QUERY_CORPUS=dir it writes dir/plugin.json, which
// scripts/chdb_queries.py replays on chdb and compares (test.sh step
// queries-chdb).
func TestPluginQueryCorpus(t *testing.T) {
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_corpus")
	rec := newRecorder(conn, db)
	rec.compare = true
	rec.add(corpusEntry{Kind: "schema", Rows: [][]any{}})
	sum, err := seed.Seed(ctx, rec, db, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// calls_seal_state's dirty marks come from the server clock: chdb gets
	// 18.16's. Then closed minutes and whole hours are sealed as
	// internal/rollup seals them: exact counts at a version newer than every
	// dirty mark, the version recorded after the rows.
	must(restoreSealState(ctx, rec, db))
	time.Sleep(2100 * time.Millisecond)
	now := time.Now().UTC()
	version := uint64(now.Add(-time.Second).Truncate(time.Second).UnixNano())
	cutoff := now.Add(-3 * time.Minute).Truncate(time.Minute)
	hourCut := cutoff.Truncate(time.Hour)
	dims := "tenant, agent_id, server_name, tool_name, method, outcome"
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO " + db + ".calls_sealed (minute, " + dims + ", calls, version) SELECT minute, " + dims + ", uniqExactMerge(calls_state), toUInt64(?) FROM " +
			db + ".calls_per_minute WHERE minute < toDateTime(?) GROUP BY minute, " + dims, []any{version, cutoff.Unix()}},
		{"INSERT INTO " + db + ".calls_sealed_totals (minute, tenant, method, outcome, calls, version) SELECT minute, tenant, method, outcome, sum(c), toUInt64(?) FROM (SELECT minute, " +
			dims + ", uniqExactMerge(calls_state) AS c FROM " + db + ".calls_per_minute WHERE minute < toDateTime(?) GROUP BY minute, " + dims + ") GROUP BY minute, tenant, method, outcome", []any{version, cutoff.Unix()}},
		{"INSERT INTO " + db + ".calls_sealed_hourly (hour, " + dims + ", calls, version) SELECT h, " + dims + ", c, toUInt64(?) FROM (SELECT toStartOfHour(minute) AS h, " + dims +
			", uniqExactMerge(calls_state) AS c FROM " + db + ".calls_per_minute WHERE minute < toDateTime(?) GROUP BY h, " + dims + ")", []any{version, hourCut.Unix()}},
		{"INSERT INTO " + db + ".calls_seal_state (tenant, minute, sealed, dirty, hour_sealed) SELECT tenant, minute, maxState(toUInt64(?)), maxState(toUInt64(0)), maxState(toUInt64(0)) FROM " +
			db + ".calls_per_minute WHERE minute < toDateTime(?) GROUP BY tenant, minute", []any{version, cutoff.Unix()}},
		{"INSERT INTO " + db + ".calls_seal_state (tenant, minute, sealed, dirty, hour_sealed) SELECT tenant, h AS minute, maxState(toUInt64(0)), maxState(toUInt64(0)), maxState(toUInt64(?)) FROM (SELECT DISTINCT tenant, toStartOfHour(minute) AS h FROM " +
			db + ".calls_per_minute WHERE minute < toDateTime(?)) GROUP BY tenant, h", []any{version, hourCut.Unix()}},
	} {
		must(rec.Exec(ctx, q.sql, q.args...))
	}

	s := &Store{conn: rec, db: db, timeout: 30 * time.Second}
	f := Filter{From: sum.Base.Add(-3 * time.Hour), To: sum.Base.Add(time.Minute)}
	day := Filter{From: sum.Base.Add(-24 * time.Hour), To: sum.Base.Add(time.Minute), Step: 3600}
	agent := f
	agent.Agent, agent.Limit = seed.Agents[1].ID, 2
	tool := f
	tool.Tenant, tool.Server, tool.Tool = "acme", "filesystem", "read_file"
	// A reader scoped to tenants (TenantAccess), and to none.
	scoped, noTenant := day, f
	scoped.Tenants, noTenant.Tenants = []string{"default", "acme"}, []string{}
	for _, x := range []Filter{f, day, agent, tool, scoped, noTenant} {
		_, err := s.Overview(ctx, x, 5)
		must(err)
		_, err = s.Totals(ctx, x)
		must(err)
		_, err = s.CallsOverTime(ctx, x)
		must(err)
		_, err = s.Agents(ctx, x)
		must(err)
		_, err = s.AgentsWithContent(ctx, x)
		must(err)
		_, err = s.ToolUsage(ctx, x)
		must(err)
		for _, col := range valueColumns {
			_, err = s.Values(ctx, x, col)
			must(err)
		}
		_, err = s.AgentGraph(ctx, x)
		must(err)
		_, err = s.RecentEvents(ctx, x)
		must(err)
		_, err = s.Sessions(ctx, x)
		must(err)
		_, _, err = s.DetectionHits(ctx, x)
		must(err)
		_, err = s.Tools(ctx, x)
		must(err)
		_, err = s.ToolDefinitions(ctx, x)
		must(err)
		_, err = s.DenialsByAgent(ctx, x)
		must(err)
		_, err = s.NewIncidents(ctx, x, "")
		must(err)
		_, err = s.NewIncidents(ctx, x, "high")
		must(err)
		for _, col := range valueColumns {
			_, err = s.Values(ctx, x, col)
			must(err)
		}
	}
	_, err = s.SessionEvents(ctx, f, sum.ExfilSession)
	must(err)
	_, err = s.EventsByID(ctx, f, sum.ExfilEventIDs)
	must(err)
	for _, subj := range []BlastSubject{{Fingerprint: "9f8e7d6c"}, {Server: "filesystem", Tool: "read_file"},
		{Server: "filesystem", Tool: "read_file", DefinitionHash: "h-read-1"}, {Session: sum.ExfilSession}, {Incident: sum.ExfilIncident}} {
		_, err = s.BlastRadius(ctx, f, subj)
		must(err)
		_, err = s.BlastRadius(ctx, scoped, subj)
		must(err)
	}
	for _, x := range []IncidentFilter{{}, {Status: "open", Severity: "high"}, {Tenant: "acme", Since: f.From, Limit: 3}, {ID: sum.ExfilIncident},
		{ID: sum.ExfilIncident, Tenants: []string{"default"}}, {Tenants: []string{}}} {
		_, err := s.Incidents(ctx, x)
		must(err)
	}
	_, err = s.OpenBySeverity(ctx, "", nil)
	must(err)
	_, err = s.OpenBySeverity(ctx, "acme", nil)
	must(err)
	_, err = s.OpenBySeverity(ctx, "", []string{"default"})
	must(err)
	_, err = s.Findings(ctx, FindingFilter{From: f.From, To: f.To})
	must(err)
	_, err = s.Findings(ctx, FindingFilter{From: f.From, To: f.To, Incident: sum.ExfilIncident, Tenant: "acme", Limit: 10})
	must(err)
	_, err = s.Actions(ctx, sum.ExfilIncident, nil)
	must(err)
	_, err = s.Actions(ctx, sum.ExfilIncident, []string{"default"})
	must(err)
	_, err = s.Findings(ctx, FindingFilter{From: f.From, To: f.To, Tenants: []string{"default"}})
	must(err)
	app := &App{store: s, settings: Settings{Database: db, ClickHouseAddress: chAddr}}
	if res, err := app.CheckHealth(ctx, nil); err != nil || !strings.Contains(res.Message, "OK") {
		t.Fatalf("health: %v %+v", err, res)
	}

	rec.mu.Lock()
	recErr, n := rec.err, len(rec.c.Entries)
	seen := map[string]bool{}
	for _, e := range rec.c.Entries {
		seen[e.Site] = true
	}
	rec.mu.Unlock()
	if recErr != nil {
		t.Fatalf("corpus: %v", recErr)
	}
	for _, site := range pluginStatementSites(t) {
		if !seen[site] {
			t.Errorf("%s runs SQL that TestPluginQueryCorpus does not exercise: add it to the corpus", site)
		}
	}
	t.Logf("%d statements recorded", n)
	if dir := os.Getenv("MCPWATCH_QUERY_CORPUS"); dir != "" {
		must(rec.write(dir, "plugin"))
	}
}

// restoreSealState records calls_seal_state as merged values (what the
// clock wrote on 18.16) for chdb to load in place of its own.
func restoreSealState(ctx context.Context, rec *recorder, db string) error {
	e := corpusEntry{Kind: "restore", Table: db + ".calls_seal_state", Rows: [][]any{},
		Columns: []string{"tenant", "minute", "sealed", "dirty", "hour_sealed"},
		SQL:     "INSERT INTO " + db + ".calls_seal_state (tenant, minute, sealed, dirty, hour_sealed) SELECT tenant, minute, maxState(sealed), maxState(dirty), maxState(hour_sealed) FROM {input} GROUP BY tenant, minute",
		Args:    []corpusArg{{T: "s", V: "tenant String, minute DateTime, sealed UInt64, dirty UInt64, hour_sealed UInt64"}}}
	rows, err := rec.Conn.Query(ctx, "SELECT toString(tenant), minute, maxMerge(sealed), maxMerge(dirty), maxMerge(hour_sealed) FROM "+db+".calls_seal_state GROUP BY tenant, minute")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var tenant string
		var minute time.Time
		var sealed, dirty, hour uint64
		if err := rows.Scan(&tenant, &minute, &sealed, &dirty, &hour); err != nil {
			return err
		}
		rec.snapshot(&e, []any{&tenant, &minute, &sealed, &dirty, &hour})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rec.add(e)
	return nil
}

// pluginStatementSites lists file:line of every call of a connection's
// Query, QueryRow, Exec, PrepareBatch or Select in this package's non-test
// files.
func pluginStatementSites(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Query", "QueryRow", "Exec", "PrepareBatch", "Select", "AsyncInsert":
			default:
				return true
			}
			if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "conn" {
				out = append(out, fmt.Sprintf("plugin/%s:%d", f, fset.Position(call.Pos()).Line))
			}
			return true
		})
	}
	return out
}

// TestCorpusRecorderKeepsRowsOfOverlappingStatements: a statement whose rows
// are scanned after other statements were recorded (agents with content
// reads the agents' events in a goroutine while it reads the call counts)
// keeps those rows in its own corpus entry.
func TestCorpusRecorderKeepsRowsOfOverlappingStatements(t *testing.T) {
	ctx := context.Background()
	conn, err := seed.Open(chAddr, "default")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rec := newRecorder(conn, "default")
	rows, err := rec.Query(ctx, "SELECT number FROM system.numbers LIMIT 3")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	// What the other goroutine records in the meantime.
	for i := 0; i < 64; i++ {
		rec.add(corpusEntry{Kind: "exec", Rows: [][]any{}})
	}
	n := 0
	for rows.Next() {
		var v uint64
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	got := len(rec.c.Entries[0].Rows)
	rec.mu.Unlock()
	if n != 3 || got != n {
		t.Fatalf("scanned %d rows, the corpus entry holds %d", n, got)
	}
}
