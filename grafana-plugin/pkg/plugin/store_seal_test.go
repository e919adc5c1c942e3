package plugin

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/chserver"
	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

// pageCounts is every count the pages show, over a few filters.
type pageCounts struct {
	Overview             []OverviewData
	Totals               []Totals
	Series, HourlySeries [][]Point
	Agents               [][]AgentRow
	Tools                [][]ToolUse
	Graph                []Graph
	Sessions             [][]SessionRow
}

func countPages(t *testing.T, s *Store, fs []Filter) pageCounts {
	t.Helper()
	ctx := context.Background()
	var c pageCounts
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range fs {
		ov, err := s.Overview(ctx, f, 10)
		must(err)
		tot, err := s.Totals(ctx, f)
		must(err)
		ser, err := s.CallsOverTime(ctx, f)
		must(err)
		hf := f
		hf.Step = 3600
		hser, err := s.CallsOverTime(ctx, hf)
		must(err)
		ag, err := s.Agents(ctx, f)
		must(err)
		tu, err := s.ToolUsage(ctx, f)
		must(err)
		gf := f
		if gf.Agent == "" {
			gf.Agent = seed.Agents[0].ID
		}
		g, err := s.AgentGraph(ctx, gf)
		must(err)
		ss, err := s.Sessions(ctx, f)
		must(err)
		c.Overview, c.Totals, c.Series, c.HourlySeries = append(c.Overview, ov), append(c.Totals, tot), append(c.Series, ser), append(c.HourlySeries, hser)
		c.Agents, c.Tools, c.Graph, c.Sessions = append(c.Agents, ag), append(c.Tools, tu), append(c.Graph, g), append(c.Sessions, ss)
	}
	return c
}

// TestSealedCountsEqualMergedCounts: the pages show the same counts before
// and after the analyzer's sealer ran, after a replay (before and after the
// re-seal), and a late event is counted at once and after the re-seal.
func TestSealedCountsEqualMergedCounts(t *testing.T) {
	fx := seeded(t, Settings{})
	ctx := context.Background()
	s, sum := fx.app.store, fx.sum
	f := fx.scope()
	day := Filter{From: sum.Base.Add(-24 * time.Hour), To: sum.Base.Add(time.Minute)}
	one := f
	one.Agent = seed.Agents[1].ID
	tool := f
	tool.Server, tool.Tool = "filesystem", "read_file"
	fs := []Filter{f, day, one, tool}

	before := countPages(t, s, fs)
	if int(before.Totals[0].Calls) != sum.Calls || int(before.Totals[1].Calls) != sum.Calls {
		t.Fatalf("unsealed totals %+v, want %d calls", before.Totals[:2], sum.Calls)
	}

	bin, err := chserver.BuildAnalyzer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seal := func() {
		t.Helper()
		// The sealer leaves minutes dirtied within its margin (1s here) alone.
		time.Sleep(2100 * time.Millisecond)
		if out, err := chserver.Seal(ctx, bin, chAddr, fx.db, time.Second, 0); err != nil {
			t.Fatalf("seal: %v\n%s", err, out)
		}
	}
	// cleanMinutes returns how many minutes and whole hours are sealed and clean.
	cleanMinutes := func() (uint64, uint64) {
		var m, h uint64
		q := "SELECT countIf(s > d), (SELECT count() FROM (SELECT toStartOfHour(minute) AS h, maxMerge(hour_sealed) AS hs, maxMerge(dirty) AS hd FROM " + fx.db + ".calls_seal_state GROUP BY h HAVING hs > hd))" +
			" FROM (SELECT minute, maxMerge(sealed) AS s, maxMerge(dirty) AS d FROM " + fx.db + ".calls_seal_state GROUP BY minute)"
		if err := s.conn.QueryRow(ctx, q).Scan(&m, &h); err != nil {
			t.Fatal(err)
		}
		return m, h
	}
	seal()
	m, h := cleanMinutes()
	if m == 0 || h == 0 {
		t.Fatalf("after sealing: %d clean minutes, %d clean hours; want some of each", m, h)
	}
	same := func(stage string, want pageCounts) {
		t.Helper()
		got := countPages(t, s, fs)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: page counts differ\n got %+v\nwant %+v", stage, got, want)
		}
	}
	same("sealed", before)

	// A replay: older events inserted again with the same ids.
	replay := "INSERT INTO " + fx.db + ".events SELECT * FROM " + fx.db + ".events WHERE ts < toDateTime(?) ORDER BY event_id LIMIT 40"
	if err := s.conn.Exec(ctx, replay, sum.Base.Add(-30*time.Minute).Unix()); err != nil {
		t.Fatal(err)
	}
	if m2, _ := cleanMinutes(); m2 >= m {
		t.Fatalf("replayed minutes still clean: %d clean before, %d after", m, m2)
	}
	same("replayed", before)
	seal()
	same("replayed, re-sealed", before)

	// A late event (new id) in a sealed minute: a copy of the exfiltration
	// read with another id.
	late := "INSERT INTO " + fx.db + ".events (event_id, tenant, kind, ts, ts_ns, method, session_id, session_key, agent_id, agent_name, user_id, client_name, server_name, tool_name, outcome, ingested_at)" +
		" SELECT 'late-1', tenant, kind, ts, ts_ns, method, session_id, session_key, agent_id, agent_name, user_id, client_name, server_name, tool_name, outcome, now() FROM " +
		fx.db + ".events WHERE event_id = 'exfil-read' LIMIT 1"
	if err := s.conn.Exec(ctx, late); err != nil {
		t.Fatal(err)
	}
	check := func(stage string) {
		t.Helper()
		got := countPages(t, s, fs)
		for i := range 2 { // f and day see everything
			if got.Totals[i].Calls != before.Totals[i].Calls+1 || got.Overview[i].Totals.Calls != before.Overview[i].Totals.Calls+1 {
				t.Fatalf("%s: totals %+v, want one more call than %+v", stage, got.Totals[i], before.Totals[i])
			}
			for j, a := range got.Agents[i] {
				want := before.Agents[i][j].Calls
				if a.AgentID == seed.Agents[0].ID {
					want++
				}
				if a.Calls != want {
					t.Fatalf("%s: agent %s calls %d, want %d", stage, a.AgentID, a.Calls, want)
				}
			}
		}
		if got.Totals[3].Calls != before.Totals[3].Calls+1 { // filesystem/read_file
			t.Fatalf("%s: read_file calls %d, want %d", stage, got.Totals[3].Calls, before.Totals[3].Calls+1)
		}
		if !reflect.DeepEqual(got.Totals[2], before.Totals[2]) || !reflect.DeepEqual(got.Agents[2], before.Agents[2]) { // another agent
			t.Fatalf("%s: agent %s changed: %+v", stage, one.Agent, got.Totals[2])
		}
		for _, r := range got.Sessions[0] {
			if r.SessionKey == sum.ExfilSession && int(r.Calls) != sum.Sessions[sum.ExfilSession]+1 {
				t.Fatalf("%s: session %s calls %d, want %d", stage, r.SessionKey, r.Calls, sum.Sessions[sum.ExfilSession]+1)
			}
		}
	}
	check("late event")
	seal()
	check("late event, re-sealed")
	if m3, _ := cleanMinutes(); m3 < m {
		t.Fatalf("re-seal left minutes dirty: %d clean, %d before", m3, m)
	}
}
