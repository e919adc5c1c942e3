package plugin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"gopkg.in/yaml.v3"
)

// obs is one stored observation for the content tests.
type obs struct {
	id, kind, method, call, agent, observer, args, result, outcome string
	at                                                             int // seconds before the base
	tags                                                           []string
}

// contentFixture is an App over a fresh database holding only evs.
func contentFixture(t *testing.T, evs []obs) (*App, time.Time) {
	t.Helper()
	ctx := context.Background()
	db, conn := freshDatabase(t, "plugin_content")
	base := time.Now().UTC().Truncate(time.Minute)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".events (event_id, tenant, kind, ts, ts_ns, source, observer, method, call_id, agent_id, server_name, tool_name, arguments, result, arguments_size, result_size, outcome, tags, ingested_at)")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		ts := base.Add(-time.Duration(e.at) * time.Second)
		outcome := e.outcome
		if outcome == "" {
			outcome = "ok"
		}
		kind := e.kind
		if kind == "" {
			kind = "message"
		}
		if err := batch.Append(e.id, "default", kind, ts, uint64(ts.UnixNano()), "span", e.observer, e.method, e.call, e.agent, "files", "read_file",
			e.args, e.result, uint32(len(e.args)), uint32(len(e.result)), outcome, append([]string{}, e.tags...), base); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	app, err := New(Settings{ClickHouseAddress: chAddr, Database: db, Username: "default", TimeoutSeconds: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Dispose)
	return app, base
}

// Three agents (content, none, partial) and rows without an agent id;
// calls observed twice (client with content, server without) are one call
// that carries content; a duplicate observation is not a call of its own.
func contentEvents() []obs {
	var evs []obs
	call := func(agent, id string, at int, args, result, outcome string) {
		evs = append(evs, obs{id: id, method: "tools/call", call: id, agent: agent, observer: "client", args: args, result: result, outcome: outcome, at: at})
	}
	// agent-full: 4 calls, each seen by the client (content) and the server
	// (none) under one call_id; one of them denied (no result expected).
	for i := range 4 {
		id := "full-" + strconv.Itoa(i)
		outcome := "ok"
		result := `{"ok":true}`
		if i == 3 {
			outcome, result = "denied", ""
		}
		call("agent-full", id, 300+i, `{"path":"/tmp/a"}`, result, outcome)
		evs = append(evs, obs{id: id + "-srv", method: "tools/call", call: id, agent: "agent-full", observer: "server", outcome: outcome, at: 300 + i})
	}
	evs = append(evs,
		obs{id: "full-list", method: "tools/list", call: "full-list", agent: "agent-full", observer: "client", at: 200},
		obs{id: "full-list-d1", kind: "tool_definition", method: "tools/list", call: "full-list", agent: "agent-full", observer: "client", at: 200},
		obs{id: "full-list-d2", kind: "tool_definition", method: "tools/list", call: "full-list", agent: "agent-full", observer: "client", at: 200},
	)
	// agent-bare: 3 calls and a tools/list, no content at all.
	for i := range 3 {
		call("agent-bare", "bare-"+strconv.Itoa(i), 400+i, "", "", "ok")
	}
	evs = append(evs, obs{id: "bare-list", method: "tools/list", call: "bare-list", agent: "agent-bare", observer: "client", at: 250})
	// agent-half: 2 of 4 calls with arguments and results; a duplicate
	// observation with arguments does not make a bare call carry them; one
	// of two tools/list brought definitions.
	call("agent-half", "half-0", 500, `{"q":1}`, `"r"`, "ok")
	call("agent-half", "half-1", 501, `{"q":2}`, `"r"`, "tool_error")
	call("agent-half", "half-2", 502, "", "", "ok")
	call("agent-half", "half-3", 503, "", "", "ok")
	evs = append(evs,
		obs{id: "half-3-dup", method: "tools/call", call: "half-3", agent: "agent-half", observer: "client", args: `{"q":3}`, result: `"r"`, at: 503, tags: []string{"duplicate_observation"}},
		obs{id: "half-list-a", method: "tools/list", call: "half-list-a", agent: "agent-half", observer: "client", at: 260},
		obs{id: "half-list-a-d", kind: "tool_definition", method: "tools/list", call: "half-list-a", agent: "agent-half", observer: "client", at: 260},
		obs{id: "half-list-b", method: "tools/list", call: "half-list-b", agent: "agent-half", observer: "client", at: 261},
	)
	// Stored without an agent id (written before the identity chain); one
	// with call_id '' (rows before schema 0016: counted by event_id).
	evs = append(evs,
		obs{id: "anon-0", method: "tools/call", call: "anon-0", agent: "", observer: "server", args: `{"x":1}`, result: `"y"`, at: 600},
		obs{id: "anon-1", method: "tools/call", call: "", agent: "", observer: "server", args: `{"x":2}`, result: `"y"`, at: 601},
	)
	return evs
}

func TestAgentContentPerCall(t *testing.T) {
	app, base := contentFixture(t, contentEvents())
	ctx := context.Background()
	f := Filter{From: base.Add(-time.Hour), To: base.Add(time.Minute)}
	rows, err := app.store.AgentsWithContent(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]AgentRow{}
	for _, r := range rows {
		if r.AgentID == "" {
			t.Errorf("an agent row with an empty id: %+v", r)
		}
		got[r.AgentID] = r
	}
	type want struct {
		calls                                  uint64
		args, resultCalls, result, lists, defs uint64
		level                                  string
		share                                  float64
		missing                                []string
		sources                                []string
	}
	for id, w := range map[string]want{
		"agent-full": {4, 4, 3, 3, 1, 1, "full", 1, []string{}, []string{"span/client", "span/server"}},
		"agent-bare": {3, 0, 3, 0, 1, 0, "none", 0, []string{ContentArguments, ContentResult, ContentDefinitions}, []string{"span/client"}},
		// (2 + 2 + 1) / (4 + 4 + 2)
		"agent-half": {4, 2, 4, 2, 2, 1, "partial", 0.5, []string{ContentArguments, ContentResult, ContentDefinitions}, []string{"span/client"}},
		NoAgentID:    {2, 2, 2, 2, 0, 0, "full", 1, []string{}, []string{"span/server"}},
	} {
		r, ok := got[id]
		if !ok {
			t.Errorf("agent %q missing from %v", id, rows)
			continue
		}
		if r.Calls != w.calls {
			t.Errorf("%s: rollup calls %d, want %d", id, r.Calls, w.calls)
		}
		c := r.Content
		if c == nil {
			t.Errorf("%s: no content", id)
			continue
		}
		if c.Calls != w.calls || c.WithArguments != w.args || c.ResultCalls != w.resultCalls || c.WithResult != w.result || c.Lists != w.lists || c.WithDefinitions != w.defs {
			t.Errorf("%s: content %+v, want %+v", id, *c, w)
		}
		if c.Level != w.level || c.Share != w.share || !reflect.DeepEqual(c.Missing, w.missing) || !reflect.DeepEqual(c.Sources, w.sources) {
			t.Errorf("%s: level %s share %v missing %v sources %v, want %s %v %v %v", id, c.Level, c.Share, c.Missing, c.Sources, w.level, w.share, w.missing, w.sources)
		}
		if !c.Since.Equal(f.From) {
			t.Errorf("%s: since %s, want the range start %s", id, c.Since, f.From)
		}
	}
	if len(rows) != 4 {
		t.Errorf("agents = %d, want 4", len(rows))
	}
	tot, err := app.store.Totals(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if tot.ActiveAgents != 4 {
		t.Errorf("active agents = %d, want 4 (the rows without an agent id are one)", tot.ActiveAgents)
	}

	// The rows without an agent id are reachable as NoAgentID, and no answer
	// of the agent page carries an empty agent.
	rng := "from=" + strconv.FormatInt(f.From.UnixMilli(), 10) + "&to=" + strconv.FormatInt(f.To.UnixMilli(), 10)
	code, b := callResource(t, app, http.MethodGet, "agents/"+url.PathEscape(NoAgentID)+"?"+rng, &backend.User{Login: "vera", Role: "Viewer"}, "")
	if code != http.StatusOK {
		t.Fatalf("agent detail = %d %s", code, b)
	}
	var det struct {
		AgentID  string       `json:"agent_id"`
		Agent    *AgentRow    `json:"agent"`
		Graph    Graph        `json:"graph"`
		Sessions []SessionRow `json:"sessions"`
		Events   []Event      `json:"events"`
	}
	if err := json.Unmarshal(b, &det); err != nil {
		t.Fatal(err)
	}
	// The page loads the agent's content afterwards (agent-content below).
	if det.AgentID != NoAgentID || det.Agent == nil || det.Agent.Calls != 2 || det.Agent.Content != nil || strings.Contains(string(b), `"content`) {
		t.Errorf("detail of %s: %s", NoAgentID, b)
	}
	if len(det.Events) != 2 {
		t.Errorf("detail events = %d, want 2", len(det.Events))
	}
	for _, e := range det.Events {
		if e.AgentID != NoAgentID {
			t.Errorf("event %s agent %q", e.EventID, e.AgentID)
		}
	}
	if len(det.Graph.Nodes) == 0 || det.Graph.Nodes[0].ID != "agent:"+NoAgentID || det.Graph.Nodes[0].Title != NoAgentID {
		t.Errorf("graph nodes = %+v", det.Graph.Nodes)
	}
	// The agent page's content: agent-content of its one agent.
	code, b = callResource(t, app, http.MethodGet, "agent-content?agent="+url.QueryEscape(NoAgentID)+"&"+rng, &backend.User{Login: "vera", Role: "Viewer"}, "")
	if code != http.StatusOK {
		t.Fatalf("agent content = %d %s", code, b)
	}
	var one struct {
		Content      map[string]*Content `json:"content"`
		ContentRules map[string][]string `json:"content_rules"`
	}
	if err := json.Unmarshal(b, &one); err != nil {
		t.Fatal(err)
	}
	if c := one.Content[NoAgentID]; len(one.Content) != 1 || c == nil || c.Calls != 2 || c.Level != "full" {
		t.Errorf("agent content of %s: %s", NoAgentID, b)
	}
	if !reflect.DeepEqual(one.ContentRules[ContentResult], []string{"mcp-cross-server-data-flow", "mcp-destructive-without-approval", "mcp-result-prompt-injection", "mcp-secret-in-result"}) {
		t.Errorf("content rules = %v", one.ContentRules)
	}
	// The agents table answers no content; agent-content answers every
	// listed agent's, as AgentsWithContent counts it.
	code, b = callResource(t, app, http.MethodGet, "agents?"+rng, &backend.User{Login: "vera", Role: "Viewer"}, "")
	if code != http.StatusOK || strings.Contains(string(b), `"agent_id":""`) || strings.Contains(string(b), `"content`) || !strings.Contains(string(b), `"agent-half"`) {
		t.Errorf("agents = %d %s", code, b)
	}
	code, b = callResource(t, app, http.MethodGet, "agent-content?"+rng, &backend.User{Login: "vera", Role: "Viewer"}, "")
	var all struct {
		Content map[string]*Content `json:"content"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &all) != nil || len(all.Content) != len(rows) {
		t.Fatalf("agent content = %d %s", code, b)
	}
	for _, r := range rows {
		c := all.Content[r.AgentID]
		if c == nil || !c.Since.Equal(r.Content.Since) {
			t.Errorf("agent content of %s = %+v, want %+v", r.AgentID, c, r.Content)
			continue
		}
		x, w := *c, *r.Content
		x.Since, w.Since = time.Time{}, time.Time{}
		if !reflect.DeepEqual(x, w) {
			t.Errorf("agent content of %s = %+v, want %+v", r.AgentID, x, w)
		}
	}
	if _, ok := all.Content[""]; ok {
		t.Errorf("agent content has an empty agent: %s", b)
	}
}

// An agent with more calls than its share of the budget is counted on its
// newest calls, from where that share begins at its rate over the range.
func TestContentWindows(t *testing.T) {
	from := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	f := Filter{From: from, To: from.Add(24 * time.Hour)}
	last := from.Add(20 * time.Hour)
	acts := []agentActivity{{ID: "quiet", Calls: 100, Last: last}, {ID: "busy", Calls: contentBudget * 4, Last: last}}
	w := contentWindows(f, acts)
	if !w["quiet"].Equal(from) {
		t.Errorf("quiet agent from %s, want the range start", w["quiet"])
	}
	// Its share is half the budget, 1/8 of its calls: 3h before the end of its last minute.
	if want := last.Add(time.Minute - 3*time.Hour); !w["busy"].Equal(want) {
		t.Errorf("busy agent from %s, want %s", w["busy"], want)
	}
	one := contentWindows(f, acts[1:2])
	if want := last.Add(time.Minute - 6*time.Hour); !one["busy"].Equal(want) {
		t.Errorf("alone, busy agent from %s, want %s", one["busy"], want)
	}
}

// A busy agent measured on its newest calls only, next to a quiet one
// measured over the whole range: the two queries of AgentContent.
func TestAgentContentNewestCalls(t *testing.T) {
	var evs []obs
	n := contentBudget/2 + 1000 // more than its half of the budget
	for i := range n {
		// Old calls without content, the newest 600 with it.
		args := ""
		if i < 600 {
			args = `{"a":1}`
		}
		evs = append(evs, obs{id: "busy-" + strconv.Itoa(i), method: "tools/call", call: "busy-" + strconv.Itoa(i), agent: "busy", observer: "client", args: args, result: args, at: i * 3600 / n})
	}
	evs = append(evs, obs{id: "quiet-0", method: "tools/call", call: "quiet-0", agent: "quiet", observer: "client", at: 3500})
	app, base := contentFixture(t, evs)
	f := Filter{From: base.Add(-time.Hour), To: base.Add(time.Minute)}
	rows, err := app.store.AgentsWithContent(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*Content{}
	for _, r := range rows {
		got[r.AgentID] = r.Content
	}
	q, b := got["quiet"], got["busy"]
	if q == nil || b == nil {
		t.Fatalf("content = %v", got)
	}
	if !q.Since.Equal(f.From) || q.Calls != 1 || q.Level != "none" {
		t.Errorf("quiet: %+v", *q)
	}
	if !b.Since.After(f.From) || b.Calls == 0 || b.Calls >= uint64(n) {
		t.Errorf("busy: since %s, %d calls counted of %d", b.Since, b.Calls, n)
	}
	if b.WithArguments != 600 || b.Level != "partial" {
		t.Errorf("busy: %d with arguments (want the newest 600), level %s", b.WithArguments, b.Level)
	}
}

// An agent whose content window starts in the end of the range that Agents
// reads for every agent while it reads the rollup is counted there.
func TestAgentContentRecentWindow(t *testing.T) {
	var evs []obs
	n := contentBudget // twice its half of the budget: its window is half the range
	counted := 0
	for i := range n {
		at := i * 360 / n // the last 6 minutes
		args := ""
		if i < 600 {
			args = `{"a":1}`
		}
		if at <= 240 {
			counted++
		}
		evs = append(evs, obs{id: "busy-" + strconv.Itoa(i), method: "tools/call", call: "busy-" + strconv.Itoa(i), agent: "busy", observer: "client", args: args, result: args, at: at})
	}
	evs = append(evs, obs{id: "quiet-0", method: "tools/call", call: "quiet-0", agent: "quiet", observer: "client", at: 300})
	app, base := contentFixture(t, evs)
	f := Filter{From: base.Add(-6 * time.Minute), To: base.Add(time.Minute)}
	if !f.recent().Equal(base.Add(-4 * time.Minute)) {
		t.Fatalf("recent = %s", f.recent())
	}
	rows, err := app.store.AgentsWithContent(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]AgentRow{}
	for _, r := range rows {
		got[r.AgentID] = r
	}
	b, q := got["busy"], got["quiet"]
	if b.Content == nil || q.Content == nil {
		t.Fatalf("rows = %+v", rows)
	}
	if !b.Content.Since.Equal(f.recent()) || b.Content.Calls != uint64(counted) || b.Content.WithArguments != 600 || b.Content.Level != "partial" {
		t.Errorf("busy: since %s calls %d (want %d) with arguments %d level %s", b.Content.Since, b.Content.Calls, counted, b.Content.WithArguments, b.Content.Level)
	}
	if !b.LastSeen.Equal(base) {
		t.Errorf("busy last seen %s, want %s", b.LastSeen, base)
	}
	if !q.Content.Since.Equal(f.From) || q.Content.Calls != 1 || !q.LastSeen.Equal(base.Add(-5*time.Minute)) {
		t.Errorf("quiet: %+v, last seen %s", *q.Content, q.LastSeen)
	}
}

// ContentRules must name exactly the rules of ../detections whose
// conditions read each kind of content. Group keys (by, fields, distinct)
// are not conditions: a rule grouping by arguments (mcp-tool-call-loop)
// still fires without them (docs/event.md).
func TestContentRulesMatchPack(t *testing.T) {
	files, err := filepath.Glob("../../../detections/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rules: %v", err)
	}
	reads := map[string]*regexp.Regexp{
		ContentArguments:   regexp.MustCompile(`event\.(arguments|args)\b|arguments_size`),
		ContentResult:      regexp.MustCompile(`event\.result\b|result_size`),
		ContentDefinitions: regexp.MustCompile(`tool_description|tool_input_schema|tool_annotations|tool_definition_hash|"tool_definition"`),
	}
	want := map[string][]string{}
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			ID        string `yaml:"id"`
			Condition string `yaml:"condition"`
			Steps     []struct {
				Condition string `yaml:"condition"`
			} `yaml:"steps"`
		}
		if err := yaml.Unmarshal(raw, &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		text := r.Condition
		for _, s := range r.Steps {
			text += "\n" + s.Condition
		}
		if r.ID == "" || strings.TrimSpace(text) == "" {
			t.Fatalf("%s: no id or condition", p)
		}
		for kind, re := range reads {
			if re.MatchString(text) {
				want[kind] = append(want[kind], r.ID)
			}
		}
	}
	for kind := range reads {
		sort.Strings(want[kind])
		if got := contentRulesText()[kind]; !reflect.DeepEqual(got, want[kind]) {
			t.Errorf("ContentRules[%s] = %v, the pack's rules reading it: %v", kind, got, want[kind])
		}
	}
}
