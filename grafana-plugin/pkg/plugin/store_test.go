package plugin

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/grafana-plugin/internal/seed"
)

func TestStoreQueriesAgainstSeed(t *testing.T) {
	fx := seeded(t, Settings{})
	ctx := context.Background()
	s, sum, f := fx.app.store, fx.sum, fx.scope()

	tot, err := s.Totals(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	// Replayed events (same event_id) must not be counted.
	if int(tot.Calls) != sum.Calls || int(tot.Errors) != sum.Errors || int(tot.Denials) != sum.Denials {
		t.Errorf("totals = %+v, want calls %d errors %d denials %d", tot, sum.Calls, sum.Errors, sum.Denials)
	}
	if int(tot.ActiveAgents) != len(seed.Agents) || tot.Servers != 3 || int(tot.Tools) != len(sum.CallsByTool) {
		t.Errorf("distinct = %+v", tot)
	}

	pts, err := s.CallsOverTime(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, p := range pts {
		n += p.Calls
	}
	if int(n) != sum.Calls {
		t.Errorf("calls over time sum = %d, want %d", n, sum.Calls)
	}

	agents, err := s.AgentsWithContent(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != len(seed.Agents) {
		t.Fatalf("agents = %d, want %d", len(agents), len(seed.Agents))
	}
	// The table's rows (no content) are the same agents in the same order
	// with the same counts; the page fills their Content column from
	// AgentsWithContent.
	table, err := s.Agents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(table) != len(agents) {
		t.Fatalf("table agents = %d, want %d", len(table), len(agents))
	}
	for i, a := range table {
		w := agents[i]
		if a.AgentID != w.AgentID || a.Calls != w.Calls || a.Errors != w.Errors || a.Denials != w.Denials || a.Servers != w.Servers || a.Tools != w.Tools ||
			a.AgentName == "" || a.UserID == "" || a.LastSeen.IsZero() || a.Content != nil {
			t.Errorf("table row %d = %+v, want %+v without content", i, a, w)
		}
	}
	for _, a := range agents {
		if int(a.Calls) != sum.CallsByAgent[a.AgentID] || int(a.Denials) != sum.DenialsByAgent[a.AgentID] {
			t.Errorf("agent %s calls %d denials %d, want %d %d", a.AgentID, a.Calls, a.Denials, sum.CallsByAgent[a.AgentID], sum.DenialsByAgent[a.AgentID])
		}
		if a.AgentName == "" || a.UserID == "" || a.LastSeen.IsZero() {
			t.Errorf("agent %s lacks identity: %+v", a.AgentID, a)
		}
		// The seed's agents send full content, none, and partial content.
		w, c := sum.ContentByAgent[a.AgentID], a.Content
		if w == nil || c == nil || int(c.Calls) != w.Calls || int(c.WithArguments) != w.WithArguments || int(c.ResultCalls) != w.ResultCalls ||
			int(c.WithResult) != w.WithResult || int(c.Lists) != w.Lists || int(c.WithDefinitions) != w.WithDefinitions {
			t.Errorf("agent %s content %+v, want %+v", a.AgentID, c, w)
		} else if want := agentContentOf(a.AgentID); c.Level != want {
			t.Errorf("agent %s content level %s, want %s", a.AgentID, c.Level, want)
		}
	}

	tools, err := s.ToolUsage(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range tools {
		if int(u.Calls) != sum.CallsByTool[u.ServerName+"/"+u.ToolName] {
			t.Errorf("tool %s/%s calls %d, want %d", u.ServerName, u.ToolName, u.Calls, sum.CallsByTool[u.ServerName+"/"+u.ToolName])
		}
	}

	af := f
	af.Agent = seed.Agents[0].ID
	g, err := s.AgentGraph(ctx, af)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, nd := range g.Nodes {
		ids[nd.ID] = true
	}
	for _, e := range g.Edges {
		if !ids[e.Source] || !ids[e.Target] {
			t.Errorf("edge %s references unknown nodes", e.ID)
		}
	}
	if !ids["agent:"+seed.Agents[0].ID] || !ids["server:http"] || !ids["tool:http/fetch"] || len(ids) != 1+3+5 {
		t.Errorf("graph nodes = %v", ids)
	}

	sessions, err := s.Sessions(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != len(sum.Sessions) {
		t.Errorf("sessions = %d, want %d", len(sessions), len(sum.Sessions))
	}
	for _, r := range sessions {
		if int(r.Calls) != sum.Sessions[r.SessionKey] || (r.Redacted > 0) != sum.RedactedSessions[r.SessionKey] {
			t.Errorf("session %s = %+v, want calls %d redacted %v", r.SessionKey, r, sum.Sessions[r.SessionKey], sum.RedactedSessions[r.SessionKey])
		}
	}
	evs, err := s.SessionEvents(ctx, f, sum.ExfilSession)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != sum.Sessions[sum.ExfilSession] {
		t.Errorf("session events = %d, want %d", len(evs), sum.Sessions[sum.ExfilSession])
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].TsNs < evs[i-1].TsNs {
			t.Errorf("session events out of order at %d", i)
		}
	}
	found := false
	for _, e := range evs {
		if e.EventID == "exfil-egress" && strings.Contains(e.Arguments, "[REDACTED:private_key:") {
			found = true
		}
	}
	if !found {
		t.Error("egress event with its redaction marker not returned as stored")
	}

	incs, err := s.Incidents(ctx, IncidentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(incs) != len(sum.Incidents) {
		t.Fatalf("incidents = %d, want %d (versions must collapse)", len(incs), len(sum.Incidents))
	}
	for _, i := range incs {
		if i.Status != sum.Incidents[i.IncidentID] {
			t.Errorf("incident %s status %s, want %s", i.IncidentID, i.Status, sum.Incidents[i.IncidentID])
		}
	}
	open, err := s.Incidents(ctx, IncidentFilter{Status: "open"})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range open {
		if i.Status != "open" {
			t.Errorf("status filter returned %s", i.Status)
		}
	}
	bySev, err := s.OpenBySeverity(ctx, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for sev, want := range sum.OpenIncidentsBySeverity {
		if int(bySev[sev]) != want {
			t.Errorf("open %s = %d, want %d", sev, bySev[sev], want)
		}
	}

	hits, series, err := s.DetectionHits(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != len(sum.FindingsByRule) || len(series) == 0 {
		t.Errorf("detections = %d rules, %d points", len(hits), len(series))
	}
	for _, h := range hits {
		if int(h.Hits) != sum.FindingsByRule[h.RuleID] {
			t.Errorf("rule %s hits %d, want %d", h.RuleID, h.Hits, sum.FindingsByRule[h.RuleID])
		}
	}

	inv, err := s.Tools(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != len(sum.ToolVersions) {
		t.Errorf("inventory = %d tools, want %d", len(inv), len(sum.ToolVersions))
	}
	for _, tr := range inv {
		k := tr.ServerName + "/" + tr.ToolName
		if int(tr.Versions) != sum.ToolVersions[k] || int(tr.Calls) != sum.CallsByTool[k] {
			t.Errorf("tool %s = %+v", k, tr)
		}
		if k == "filesystem/read_file" && (tr.CurrentHash != "h-read-2" || tr.Description != sum.PoisonedDescription) {
			t.Errorf("read_file current definition = %s %q", tr.CurrentHash, tr.Description)
		}
	}
	df := f
	df.Server, df.Tool = "filesystem", "read_file"
	defs, err := s.ToolDefinitions(ctx, df)
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 2 || defs[0].Hash != "h-read-1" || defs[1].Hash != "h-read-2" {
		t.Errorf("definitions = %+v", defs)
	}
	// The history shows what changed (the facts the analyzer recorded).
	if len(defs) == 2 {
		want := &DefinitionDiff{PreviousHash: "h-read-1", PreviousVersion: "1.4.2", VersionBump: true,
			ParamsAdded: []string{"note"}, ParamsRemoved: []string{}, HostsAdded: []string{}, EmailsAdded: []string{},
			PathsAdded: []string{"~/.ssh/id_rsa"}, InstructionsAdded: []string{"important-tag"}, HintsChanged: []string{}}
		if defs[0].Diff != nil || !reflect.DeepEqual(defs[1].Diff, want) {
			t.Errorf("diffs = %+v, %+v; want nil, %+v", defs[0].Diff, defs[1].Diff, want)
		}
	}
	changes, err := s.ToolDefinitions(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 {
		t.Errorf("changed definitions = %d, want 2 (read_file's two versions)", len(changes))
	}
}

// The one-pass overview must agree with the separate queries.
func TestOverviewMatchesSeparateQueries(t *testing.T) {
	fx := seeded(t, Settings{})
	ctx := context.Background()
	s, f := fx.app.store, fx.scope()
	ov, err := s.Overview(ctx, f, 3)
	if err != nil {
		t.Fatal(err)
	}
	tot, err := s.Totals(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if ov.Totals != tot {
		t.Errorf("overview totals %+v != %+v", ov.Totals, tot)
	}
	pts, err := s.CallsOverTime(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != len(ov.Series) {
		t.Fatalf("series %d points, want %d", len(ov.Series), len(pts))
	}
	for i := range pts {
		a, b := pts[i], ov.Series[i]
		if !a.Time.Equal(b.Time) || a.Calls != b.Calls || a.Errors != b.Errors || a.Denials != b.Denials {
			t.Errorf("point %d: %+v != %+v", i, ov.Series[i], pts[i])
		}
	}
	tf := f
	tf.Limit = 3
	top, err := s.ToolUsage(ctx, tf)
	if err != nil {
		t.Fatal(err)
	}
	if len(top) != len(ov.TopTools) {
		t.Fatalf("top tools %d, want %d", len(ov.TopTools), len(top))
	}
	for i := range top {
		if top[i] != ov.TopTools[i] {
			t.Errorf("top tool %d: %+v != %+v", i, ov.TopTools[i], top[i])
		}
	}
}

func agentContentOf(id string) string {
	for _, a := range seed.Agents {
		if a.ID == id {
			return a.Content
		}
	}
	return ""
}
