package plugin

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// queryOne runs one query through QueryData as user (nil: no user).
func queryOne(t *testing.T, a *App, user *backend.User, f Filter, model map[string]any) backend.DataResponse {
	t.Helper()
	b, err := json.Marshal(model)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.QueryData(context.Background(), &backend.QueryDataRequest{PluginContext: backend.PluginContext{OrgID: 1, User: user},
		Queries: []backend.DataQuery{{RefID: "A", TimeRange: backend.TimeRange{From: f.From, To: f.To}, Interval: time.Minute, JSON: b}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Responses["A"]
}

func frameNamed(t *testing.T, r backend.DataResponse, name string) *data.Frame {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("query failed: %v", r.Error)
	}
	for _, fr := range r.Frames {
		if fr.Name == name {
			return fr
		}
	}
	t.Fatalf("no frame %q among %d", name, len(r.Frames))
	return nil
}

func column[T any](t *testing.T, fr *data.Frame, name string) []T {
	t.Helper()
	fld, i := fr.FieldByName(name)
	if i < 0 {
		t.Fatalf("frame %s has no field %s", fr.Name, name)
	}
	out := make([]T, fld.Len())
	for j := range out {
		out[j] = fld.At(j).(T)
	}
	return out
}

func sum(xs []uint64) (n uint64) {
	for _, x := range xs {
		n += x
	}
	return n
}

func TestQueryRulesAndRuleHits(t *testing.T) {
	fx := seeded(t, Settings{})
	f := fx.scope()
	rules := frameNamed(t, queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryRules}), "rules")
	ids, hits := column[string](t, rules, "rule_id"), column[uint64](t, rules, "hits")
	if len(ids) != len(fx.sum.FindingsByRule) {
		t.Fatalf("rules frame lists %v, want the seed's %v", ids, fx.sum.FindingsByRule)
	}
	for i, id := range ids {
		if int(hits[i]) != fx.sum.FindingsByRule[id] {
			t.Errorf("rule %s: %d findings, want %d", id, hits[i], fx.sum.FindingsByRule[id])
		}
	}

	// Over time: one frame per rule whose buckets add up to its findings.
	r := queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryRuleHits})
	if r.Error != nil || len(r.Frames) != len(fx.sum.FindingsByRule) {
		t.Fatalf("rule_hits: %v, %d frames, want %d", r.Error, len(r.Frames), len(fx.sum.FindingsByRule))
	}
	for _, fr := range r.Frames {
		rule := fr.Fields[1].Labels["rule"]
		if got := sum(column[uint64](t, fr, "hits")); int(got) != fx.sum.FindingsByRule[rule] {
			t.Errorf("rule_hits{rule=%s} adds up to %d, want %d", rule, got, fx.sum.FindingsByRule[rule])
		}
		if fr.Rows() < 100 {
			t.Errorf("rule_hits{rule=%s}: %d buckets over 3h at 1m, want zero-filled", rule, fr.Rows())
		}
	}

	// One rule: its row and its series only.
	rule := ids[0]
	one := frameNamed(t, queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryRules, "rule": rule}), "rules")
	if got := column[string](t, one, "rule_id"); !slices.Equal(got, []string{rule}) {
		t.Errorf("rules for %s = %v", rule, got)
	}
	r = queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryRuleHits, "rule": rule})
	if len(r.Frames) != 1 || r.Frames[0].Fields[1].Labels["rule"] != rule {
		t.Errorf("rule_hits for %s = %d frames", rule, len(r.Frames))
	}
}

func TestQueryBlastRadius(t *testing.T) {
	fx := seeded(t, Settings{})
	f := fx.scope()
	ctx := context.Background()

	// The leaked key: the same answer as the store function, as frames.
	r := queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryBlastRadius, "fingerprint": "9f8e7d6c"})
	agents := frameNamed(t, r, "blast_agents")
	if got := column[string](t, agents, "agent_id"); !slices.Equal(got, []string{"agent-alpha"}) {
		t.Errorf("agents = %v, want agent-alpha", got)
	}
	if got := column[string](t, frameNamed(t, r, "blast_sessions"), "session_key"); !slices.Equal(got, []string{fx.sum.ExfilSession}) {
		t.Errorf("sessions = %v, want %s", got, fx.sum.ExfilSession)
	}
	ids := column[string](t, frameNamed(t, r, "blast_calls"), "event_id")
	slices.Sort(ids)
	if want := slices.Sorted(slices.Values(fx.sum.ExfilEventIDs)); !slices.Equal(ids, want) {
		t.Errorf("calls = %v, want %v", ids, want)
	}
	series := frameNamed(t, r, "blast_series")
	if got := sum(column[uint64](t, series, "calls")); got != 2 {
		t.Errorf("series adds up to %d requests, want 2", got)
	}
	if series.Meta == nil || series.Meta.Type != data.FrameTypeTimeSeriesWide || series.Rows() < 100 {
		t.Errorf("series is not a zero-filled wide time series: %+v, %d rows", series.Meta, series.Rows())
	}

	// A tool: the frames agree with the store function.
	want, err := fx.app.store.BlastRadius(ctx, f, BlastSubject{Server: "filesystem", Tool: "read_file"})
	if err != nil {
		t.Fatal(err)
	}
	r = queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryBlastRadius, "server": "filesystem", "tool": "read_file", "agent": "$__all"})
	wantCalls, _ := blastTotals(want)
	if got := sum(column[uint64](t, frameNamed(t, r, "blast_agents"), "calls")); got != wantCalls || wantCalls == 0 {
		t.Errorf("tool: %d requests, store says %d", got, wantCalls)
	}
	if got := sum(column[uint64](t, frameNamed(t, r, "blast_series"), "calls")); got != wantCalls {
		t.Errorf("tool series: %d requests, store says %d", got, wantCalls)
	}
	// The calls frame lists the newest calls and says how many more there are (the store's more_calls).
	calls := frameNamed(t, r, "blast_calls")
	if calls.Meta == nil || calls.Meta.Custom == nil {
		t.Fatalf("blast_calls has no meta.custom")
	}
	if got := calls.Meta.Custom.(map[string]any)["more_calls"]; got != want.MoreCalls || calls.Rows() != len(want.Calls) {
		t.Errorf("blast_calls: %d rows, more_calls %v; store says %d + %d", calls.Rows(), got, len(want.Calls), want.MoreCalls)
	}
	// The agent variable narrows it.
	r = queryOne(t, fx.app, nil, f, map[string]any{"queryType": QueryBlastRadius, "server": "filesystem", "tool": "read_file", "agent": want.Agents[0].AgentID})
	if got := column[string](t, frameNamed(t, r, "blast_agents"), "agent_id"); !slices.Equal(got, []string{want.Agents[0].AgentID}) {
		t.Errorf("tool, one agent: %v", got)
	}

	// Bad subjects are the query's own error with the endpoint's statuses.
	for name, c := range map[string]struct {
		model  map[string]any
		status backend.Status
	}{
		"no subject":     {map[string]any{}, backend.StatusBadRequest},
		"two subjects":   {map[string]any{"fingerprint": "9f8e7d6c", "session": "x"}, backend.StatusBadRequest},
		"bad print":      {map[string]any{"fingerprint": "' OR 1=1 --"}, backend.StatusBadRequest},
		"no such def":    {map[string]any{"server": "filesystem", "tool": "read_file", "definition_hash": "nope"}, backend.StatusNotFound},
		"tool sans name": {map[string]any{"server": "filesystem"}, backend.StatusBadRequest},
	} {
		c.model["queryType"] = QueryBlastRadius
		if r := queryOne(t, fx.app, nil, f, c.model); r.Error == nil || r.Status != c.status {
			t.Errorf("%s: %v %v, want status %d", name, r.Status, r.Error, c.status)
		}
	}
}

// A reader scoped to one tenant sees that tenant's blast radius only.
func TestSecurityQueryBlastRadiusTenantScoped(t *testing.T) {
	base := time.Now()
	access := &TenantAccess{Users: map[string][]string{"dana": {"default"}}, Roles: map[string][]string{"Admin": {AllTenants}}}
	alone, sum := tenantWorld(t, base, true, nil, "")
	both, _ := tenantWorld(t, base, false, access, "")
	f := Filter{From: sum.Base.Add(-3 * time.Hour), To: sum.Base.Add(time.Minute)}
	root := &backend.User{Login: "root", Role: "Admin"}
	dana := &backend.User{Login: "dana", Role: "Editor"}
	model := map[string]any{"queryType": QueryBlastRadius, "server": "filesystem", "tool": "read_file"}
	calls := func(a *App, u *backend.User) uint64 {
		return sumCalls(t, frameNamed(t, queryOne(t, a, u, f, model), "blast_agents"))
	}
	want, all, got := calls(alone, root), calls(both, root), calls(both, dana)
	if want == 0 || all <= want {
		t.Fatalf("default alone %d requests, both tenants %d: the case proves nothing", want, all)
	}
	if got != want {
		t.Errorf("dana (tenant default) sees %d requests, want default's %d", got, want)
	}
	model["tenant"] = "globex"
	if r := queryOne(t, both, dana, f, model); r.Error == nil || r.Status != backend.StatusForbidden {
		t.Errorf("dana asking for globex: %v %v, want 403", r.Status, r.Error)
	}
}

func sumCalls(t *testing.T, fr *data.Frame) uint64 { return sum(column[uint64](t, fr, "calls")) }
