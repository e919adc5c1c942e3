// Command bench measures the app's page data endpoints over a large events
// table: it seeds N events (default 10M) into ClickHouse with INSERT …
// SELECT FROM numbers() (which also fills the calls_per_minute rollup through
// its materialized view), plus findings, incidents and tool definitions,
// seals the rollup with the analyzer's own sealer (`analyzer seal`, built
// from the repository), then calls every page endpoint through the plugin's CallResource handler (the
// same code Grafana reaches over gRPC) and prints p50/p95/max per endpoint.
//
// It is not part of the test run. Usage (from grafana-plugin/):
//
//	go run ./cmd/bench [-events 10000000] [-iterations 30] [-ch host:port] [-db name [-seed-only]] [-only regexp]
//
// With -db the database is kept, and a later run with the same -db reuses it
// (no seeding; the windows end at its newest event), so a locked run can
// measure without seeding.
// Without -ch (or MCPWATCH_TEST_CLICKHOUSE) it starts its own
// clickhouse-server in a temp dir and stops it at the end.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/chserver"
	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
	"github.com/mcpwatch/mcpwatch/grafana-plugin/pkg/plugin"
)

func main() {
	if err := run(); err != nil {
		slog.Error("bench failed", "err", err)
		os.Exit(1)
	}
}

const (
	agents   = 200
	servers  = 20
	tools    = 100
	sessions = 50000
	span     = 24 * time.Hour
)

func run() error {
	events := flag.Int("events", 10_000_000, "events to seed")
	iterations := flag.Int("iterations", 30, "requests per endpoint")
	chAddr := flag.String("ch", os.Getenv("MCPWATCH_TEST_CLICKHOUSE"), "ClickHouse native address (empty: start one)")
	keepDB := flag.String("db", "", "database to seed and keep; if it already holds events, seeding is skipped (needs -ch). Empty: a temporary bench_<unix> database, dropped at the end")
	seedOnly := flag.Bool("seed-only", false, "seed (and seal) and exit without measuring (with -db: prepare a database for a later locked run)")
	only := flag.String("only", "", "measure only the endpoints whose name matches this regular expression (empty: all)")
	flag.Parse()
	ctx := context.Background()
	if *chAddr == "" {
		dir, err := os.MkdirTemp("", "mcpwatch-bench-ch-")
		if err != nil {
			return fmt.Errorf("cannot create temp dir: %w", err)
		}
		defer os.RemoveAll(dir)
		srv, err := chserver.Start(ctx, dir)
		if err != nil {
			return err
		}
		defer srv.Stop()
		*chAddr = srv.Addr
	}
	db := *keepDB
	if db == "" {
		db = fmt.Sprintf("bench_%d", time.Now().Unix())
		defer func() { _ = chserver.Exec(context.Background(), *chAddr, "DROP DATABASE IF EXISTS "+db) }()
	}
	conn, err := seed.Open(*chAddr, "default")
	if err != nil {
		return err
	}
	defer conn.Close()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&n); err != nil {
		// A new database. (An existing one is not migrated again: the
		// backfill migration would mark every minute dirty.)
		if err := chserver.CreateSchema(ctx, *chAddr, db); err != nil {
			return err
		}
		n = 0
	}
	now := time.Now().UTC().Truncate(time.Minute)
	if n == 0 {
		start := time.Now()
		if err := seedBulk(ctx, conn, db, *events, now); err != nil {
			return err
		}
		seedDur := time.Since(start)
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events").Scan(&n); err != nil {
			return fmt.Errorf("cannot count events: %w", err)
		}
		fmt.Printf("seeded %d events in %s (%.0f rows/s)\n", n, seedDur.Round(time.Second), float64(n)/seedDur.Seconds())
	} else {
		// Measure at the seeded data's "now" so the 6h/24h windows cover the same rows.
		var last time.Time
		if err := conn.QueryRow(ctx, "SELECT max(ts) FROM "+db+".events").Scan(&last); err != nil {
			return fmt.Errorf("cannot read newest event: %w", err)
		}
		now = last.UTC().Truncate(time.Minute)
		fmt.Printf("reusing %d events in %s (newest %s)\n", n, db, now.Format(time.RFC3339))
	}
	// Seal the rollup as the running analyzer would (its sealer, through
	// `analyzer seal`): margin 1s instead of 30s so that the seeding's last
	// inserts need not age 30 s first, and a grace that leaves the newest 3
	// minutes of the data open, as a running analyzer (grace 2m, a pass
	// every 30s) leaves the newest 2-3 minutes before now.
	bdir, err := os.MkdirTemp("", "mcpwatch-bench-analyzer-")
	if err != nil {
		return fmt.Errorf("cannot create temp dir: %w", err)
	}
	defer os.RemoveAll(bdir)
	bin, err := chserver.BuildAnalyzer(ctx, bdir)
	if err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	start := time.Now()
	grace := time.Since(now) + 2*time.Minute
	if _, err := chserver.Seal(ctx, bin, *chAddr, db, time.Second, grace); err != nil {
		return err
	}
	fmt.Printf("sealed in %s\n", time.Since(start).Round(100*time.Millisecond))
	for _, w := range []time.Duration{6 * time.Hour, 24 * time.Hour} {
		var open, all uint64
		if err := conn.QueryRow(ctx, "SELECT countIf(s <= d), count() FROM (SELECT minute, maxMerge(sealed) AS s, maxMerge(dirty) AS d FROM "+db+
			".calls_seal_state WHERE minute >= toDateTime(?) GROUP BY minute)", now.Add(-w).Unix()).Scan(&open, &all); err != nil {
			return fmt.Errorf("cannot read seal state: %w", err)
		}
		fmt.Printf("last %s: %d of %d minutes with calls unsealed (read by merging states)\n", w, open, all)
	}
	if *seedOnly {
		return nil
	}
	// Let the merges of the freshly inserted parts finish off the clock (a
	// running system measures merged data, not the minute after a bulk load).
	mstart := time.Now()
	for time.Since(mstart) < 3*time.Minute {
		var merging uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges WHERE database = ?", db).Scan(&merging); err != nil {
			return fmt.Errorf("cannot read merges: %w", err)
		}
		if merging == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	fmt.Printf("waited %s for merges\n", time.Since(mstart).Round(time.Second))

	app, err := plugin.New(plugin.Settings{ClickHouseAddress: *chAddr, Database: db, Username: "default", TimeoutSeconds: 60})
	if err != nil {
		return err
	}
	defer app.Dispose()

	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	r6 := "from=" + ms(now.Add(-6*time.Hour)) + "&to=" + ms(now.Add(time.Minute))
	r24 := "from=" + ms(now.Add(-24*time.Hour)) + "&to=" + ms(now.Add(time.Minute))
	q := `{"from":"` + ms(now.Add(-6*time.Hour)) + `","to":"` + ms(now) + `","queries":[{"refId":"A","queryType":"calls_over_time"},{"refId":"B","queryType":"top_agents"},{"refId":"C","queryType":"agent_graph","agent":"agent-7"},{"refId":"D","queryType":"incidents"}]}`
	// The secret of the blast-radius case: one of the seeded 100, as the
	// redaction_sightings view recorded it.
	var fingerprint string
	var sightings uint64
	if err := conn.QueryRow(ctx, "SELECT any(fingerprint), count() FROM "+db+".redaction_sightings").Scan(&fingerprint, &sightings); err != nil {
		return fmt.Errorf("cannot read a fingerprint: %w", err)
	}
	fmt.Printf("redaction_sightings: %d rows; the secret case asks for %q\n", sightings, fingerprint)
	cases := []struct{ name, method, path, body string }{
		{"overview (6h)", "GET", "overview?" + r6, ""},
		{"overview (24h = all 10M)", "GET", "overview?" + r24, ""},
		{"agents (6h)", "GET", "agents?" + r6, ""},
		{"agents (24h)", "GET", "agents?" + r24, ""},
		{"agent detail (6h)", "GET", "agents/agent-7?" + r6, ""},
		// The Content column and the agent page's shares, which the pages
		// load after the table and the agent page (GET agent-content).
		{"agent content (6h)", "GET", "agent-content?" + r6, ""},
		{"agent content (24h)", "GET", "agent-content?" + r24, ""},
		{"agent content of one agent (6h)", "GET", "agent-content?agent=agent-7&" + r6, ""},
		{"sessions (6h)", "GET", "sessions?" + r6, ""},
		{"sessions of one agent (24h)", "GET", "sessions?agent=agent-7&" + r24, ""},
		{"session detail (24h)", "GET", "sessions/sess-1207?agent=agent-7&" + r24, ""},
		{"incidents", "GET", "incidents", ""},
		{"incident detail", "GET", "incidents/inc-7", ""},
		{"detections (24h)", "GET", "detections?" + r24, ""},
		{"tools (24h)", "GET", "tools?" + r24, ""},
		{"tool definitions", "GET", "tools/definitions?server=server-7&tool=tool-7&" + r24, ""},
		{"data source query x4 (6h)", "POST", "query", q},
		{"blast radius: tool (24h)", "GET", "blast-radius?server=server-7&tool=tool-7&" + r24, ""},
		{"blast radius: tool definition (24h)", "GET", "blast-radius?server=server-7&tool=tool-7&definition_hash=h-7&" + r24, ""},
		{"blast radius: secret (24h)", "GET", "blast-radius?fingerprint=" + fingerprint + "&" + r24, ""},
		{"blast radius: session (24h)", "GET", "blast-radius?session=sess-1207&" + r24, ""},
		{"blast radius: incident (24h)", "GET", "blast-radius?incident=inc-7&" + r24, ""},
	}
	match, err := regexp.Compile(*only)
	if err != nil {
		return fmt.Errorf("invalid -only: %w", err)
	}
	fmt.Printf("\n| endpoint | p50 ms | p95 ms | max ms | answer |\n|---|---:|---:|---:|---|\n")
	for _, c := range cases {
		if !match.MatchString(c.name) {
			continue
		}
		var durs []time.Duration
		var size string
		for i := 0; i < *iterations+2; i++ {
			t0 := time.Now()
			code, body := call(ctx, app, c.method, c.path, c.body)
			d := time.Since(t0)
			if code != 200 {
				return fmt.Errorf("%s: HTTP %d: %.300s", c.name, code, body)
			}
			if i == 0 {
				size = answerSize(body)
			}
			if i >= 2 { // two warm-up calls
				durs = append(durs, d)
			}
		}
		sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
		p := func(q float64) float64 {
			return float64(durs[int(q*float64(len(durs)-1)+0.5)].Microseconds()) / 1000
		}
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %s |\n", c.name, p(0.5), p(0.95), p(1), size)
	}
	return nil
}

func call(ctx context.Context, app *plugin.App, method, path, body string) (int, []byte) {
	var code int
	var out []byte
	p := path
	for i := range p {
		if p[i] == '?' {
			p = p[:i]
			break
		}
	}
	err := app.CallResource(ctx, &backend.CallResourceRequest{
		PluginContext: backend.PluginContext{User: &backend.User{Login: "bench", Role: "Viewer"}},
		Method:        method, Path: p, URL: path, Body: []byte(body),
	}, backend.CallResourceResponseSenderFunc(func(r *backend.CallResourceResponse) error {
		if code == 0 {
			code = r.Status
		}
		out = append(out, r.Body...)
		return nil
	}))
	if err != nil {
		return 599, []byte(err.Error())
	}
	return code, out
}

// seedBulk inserts events in 1M-row INSERT … SELECT chunks (bounded memory
// for the materialized view), spread over the last 24 hours: 200 agents,
// 50k sessions (each of one agent), each agent using 5 of 100 tools on 20
// servers; 5% errors, 3% denials, 2% with a redacted secret (one of 100
// fingerprints in the arguments, so redaction_sightings fills).
func seedBulk(ctx context.Context, conn driver.Conn, db string, total int, now time.Time) error {
	base := now.Unix()
	const chunk = 1_000_000
	for off := 0; off < total; off += chunk {
		n := min(chunk, total-off)
		q := fmt.Sprintf(`INSERT INTO %[1]s.events (event_id, tenant, ts, ts_ns, duration_ns, trace_id, span_id, method, session_id, session_key,
  agent_id, agent_name, user_id, client_name, server_name, tool_name, arguments, result, arguments_size, result_size, outcome, tags, ingested_at)
SELECT concat('ev-', toString(number)), 'default', toDateTime(%[2]d - (number * 7919) %% %[3]d), (%[2]d - (number * 7919) %% %[3]d) * 1000000000 + number %% 1000000000,
  1000000 + number %% 5000000, concat('t-', toString(intDiv(number, 10))), concat('s-', toString(number)), 'tools/call',
  concat('sess-', toString(number %% %[4]d)), concat('sess-', toString(number %% %[4]d)),
  concat('agent-', toString(number %% %[4]d %% %[5]d)), concat('Agent ', toString(number %% %[4]d %% %[5]d)), concat('user-', toString(number %% 50)), 'claude-desktop',
  concat('server-', toString((number %% %[5]d * 7 + intDiv(number, %[5]d) %% 5) %% %[7]d %% %[6]d)), concat('tool-', toString((number %% %[5]d * 7 + intDiv(number, %[5]d) %% 5) %% %[7]d)),
  if(number %% 50 = 0, concat('{"env":{"AWS_ACCESS_KEY_ID":"[REDACTED:aws_access_key:', lower(substring(hex(cityHash64(number %% 100)), 1, 8)), ']"}}'),
    concat('{"path":"/home/u/file-', toString(number %% 1000), '.txt"}')), '{"ok":true}', 40, 11,
  CAST(multiIf(number %% 20 = 0, 'error', number %% 33 = 0, 'denied', number %% 47 = 0, 'tool_error', 'ok') AS Enum8('ok' = 1, 'error' = 2, 'tool_error' = 3, 'denied' = 4)),
  if(number %% 50 = 0, ['secret:aws_access_key'], emptyArrayString()), now()
FROM numbers(%[8]d, %[9]d)`, db, base, int64(span.Seconds()), sessions, agents, servers, tools, off, n)
		if err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("cannot insert events: %w", err)
		}
	}
	stmts := []string{
		fmt.Sprintf(`INSERT INTO %[1]s.findings (finding_id, tenant, ts, rule_id, rule_version, rule_title, rule_kind, severity, group_key, summary, agent_id, session_key, server_name, tool_name, event_ids, evidence, incident_id, inserted_at)
SELECT concat('f-', toString(number)), 'default', toDateTime(%[2]d - number * 7 %% 86400), concat('rule-', toString(number %% 30)), '1', concat('Rule ', toString(number %% 30)), 'match',
  CAST(multiIf(number %% 10 = 0, 'critical', number %% 3 = 0, 'high', 'medium') AS Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5)),
  concat('g-', toString(number %% 1000)), 'summary', concat('agent-', toString(number %% 200)), concat('sess-', toString(number %% 50000)), 'server-7', 'tool-7',
  [concat('ev-', toString(number * 100))], '{"k":"v"}', concat('inc-', toString(number %% 1000)), now()
FROM numbers(20000)`, db, base),
		fmt.Sprintf(`INSERT INTO %[1]s.incidents (incident_id, version, tenant, rule_id, rule_title, group_key, title, summary, status, severity, finding_count, first_seen, last_seen, agent_id, session_key, created_at, updated_at)
SELECT concat('inc-', toString(number %% 1000)), intDiv(number, 1000) + 1, 'default', concat('rule-', toString(number %% 30)), 'Rule', concat('g-', toString(number %% 1000)), 'Incident', 'summary',
  CAST(if(intDiv(number, 1000) = 2 AND number %% 2 = 0, 'acknowledged', 'open') AS Enum8('open' = 1, 'acknowledged' = 2, 'resolved' = 3, 'suppressed' = 4)),
  CAST('high' AS Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5)), 20, toDateTime(%[2]d - 80000), toDateTime(%[2]d - number %% 3600),
  concat('agent-', toString(number %% 200)), concat('sess-', toString(number %% 50000)), toDateTime(%[2]d - 80000), toDateTime(%[2]d)
FROM numbers(3000)`, db, base),
		fmt.Sprintf(`INSERT INTO %[1]s.tool_definitions (tenant, server_name, tool_name, definition_hash, first_seen, last_seen, description, input_schema, annotations, source, first_event_id)
SELECT 'default', concat('server-', toString(number %% 20)), concat('tool-', toString(number %% 100)), concat('h-', toString(number)), toDateTime(%[2]d - 86400 + number * 60), toDateTime(%[2]d),
  concat('Tool ', toString(number %% 100), ' version ', toString(intDiv(number, 100))), '{"type":"object"}', '{}', 'tools/list', ''
FROM numbers(300)`, db, base),
	}
	for _, s := range stmts {
		if err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("cannot seed bench tables: %w", err)
		}
	}
	return nil
}

// answerSize says how much an answer held (the lengths of its top-level
// lists), so a fast answer is seen not to be an empty one.
func answerSize(body []byte) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return fmt.Sprintf("%d bytes", len(body))
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		var list []json.RawMessage
		if json.Unmarshal(m[k], &list) == nil {
			parts = append(parts, fmt.Sprintf("%s %d", k, len(list)))
		}
	}
	return strings.Join(parts, ", ")
}
