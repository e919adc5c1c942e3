package realsenders

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/calljoin"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/enrich"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/store"
)

// stack is one instrumentation under test and what mcpwatch should make
// of it.
type stack struct {
	name    string // the runner's --stack
	lang    string // python, typescript
	tenant  string
	content bool // arguments, results and tool definitions reach mcpwatch
	// observations per tools/call (events, duplicates included) and how
	// many of them carry the duplicate_observation tag.
	observations, duplicates int
	// serverAgent is the agent_id of the server observations: callerAgent,
	// the client observation's agent, carried to the server by the capture
	// packages, or, without them, given by the analyzer's call join
	// (joined).
	serverAgent string
	// joined: the server observations get the caller's agent from the
	// call join (tag joined:agent), their client and server observations
	// being exported separately.
	joined bool
	// serverGaps are the known gaps in server identity (docs/event.md):
	// per observer ("client", "server", "duplicate"), the server_names its
	// observations may carry when it is not the MCP server's name.
	serverGaps map[string][]string
	// requestIDGap: the JSON-RPC request id reaches mcpwatch only when the
	// span carrying it is exported in the same request as the call's.
	requestIDGap bool
}

const callerAgent = "caller"

var stacks = []stack{
	{name: "sdk", lang: "python", observations: 2, serverAgent: callerAgent, joined: true,
		// No name on the SDK's spans: the server side has its process's
		// service.name (one process serves the four servers here), and
		// the client side gets it from the join.
		serverGaps: map[string][]string{"client": {"mcpwatch-scenario-mcp-servers"}, "server": {"mcpwatch-scenario-mcp-servers"}}},
	{name: "sdk+capture", lang: "python", content: true, observations: 2, serverAgent: callerAgent},
	{name: "fastmcp", lang: "python", observations: 3, duplicates: 1, serverAgent: callerAgent, joined: true,
		serverGaps: map[string][]string{"duplicate": {""}}},
	{name: "fastmcp+capture", lang: "python", content: true, observations: 3, duplicates: 1, serverAgent: callerAgent},
	// Four initialize.mcp spans under one parent: the request cannot tell
	// which connection a tools/list or tools/call used. The request id is
	// on a ResponseStreamWriter child span, joined within a request only.
	{name: "openllmetry", lang: "python", content: true, observations: 1, serverGaps: map[string][]string{"client": {""}},
		requestIDGap: true},
	{name: "capture", lang: "typescript", content: true, observations: 2, serverAgent: callerAgent},
	{name: "openllmetry", lang: "typescript", content: true, observations: 1},
}

func (s stack) id() string { return s.lang + "/" + s.name }

func init() {
	for i := range stacks {
		stacks[i].tenant = "rs-" + strings.NewReplacer("/", "-", "+", "-").Replace(stacks[i].id())
	}
}

// TestRealSenders runs every stack's scenario against one pipeline and
// checks, per stack, what ClickHouse holds. Run with -v to see the figures
// of docs/event.md's instrumentation table.
func TestRealSenders(t *testing.T) {
	var tenants []string
	for _, s := range stacks {
		tenants = append(tenants, s.tenant)
	}
	p := startPipeline(t, tenants)
	for _, s := range stacks {
		t.Run(s.id(), func(t *testing.T) {
			var r run
			if s.lang == "python" {
				r = runPython(t, s.name, p.endpoint, p.tokens[s.tenant])
			} else {
				r = runTypeScript(t, s.name, p.endpoint, p.tokens[s.tenant])
			}
			onTopic := p.topicEvents(t, s.tenant)
			p.drained(t)
			checkStack(t, p, s, r, onTopic)
		})
	}
}

// stored is what ClickHouse holds for one tenant.
type stored struct {
	events   []event.Event
	findings []finding
}

type finding struct {
	ID, Rule, Kind, Agent, Server, Tool, Summary, SessionKey string
	EventIDs                                                 []string
}

func load(t *testing.T, p *pipeline, tenant string) stored {
	t.Helper()
	ctx := context.Background()
	db := "`" + p.st.Database() + "`."
	rows, err := p.conn().Query(ctx, `SELECT event_id, kind, ts_ns, observer, trace_id, span_id, parent_span_id,
		service_name, service_instance, method, request_id, call_id, session_id, conversation_id, session_key,
		agent_id, client_name, server_name, server_version, tool_name, arguments, result, outcome,
		tool_description, tags
		FROM `+db+"events FINAL WHERE tenant = ? ORDER BY ts_ns, event_id", tenant)
	if err != nil {
		t.Fatal(err)
	}
	var s stored
	for rows.Next() {
		var e event.Event
		var kind, observer, outcome string
		var tsNs uint64
		if err := rows.Scan(&e.EventID, &kind, &tsNs, &observer, &e.TraceID, &e.SpanID, &e.ParentSpanID,
			&e.ServiceName, &e.ServiceInstance, &e.Method, &e.RequestID, &e.CallID, &e.SessionID, &e.ConversationID,
			&e.SessionKey, &e.AgentID, &e.ClientName, &e.ServerName, &e.ServerVersion, &e.ToolName, &e.Arguments,
			&e.Result, &outcome, &e.ToolDescription, &e.Tags); err != nil {
			t.Fatal(err)
		}
		e.Tenant = tenant
		e.Kind, e.Observer, e.Outcome = event.Kind(kind), event.Observer(observer), event.Outcome(outcome)
		e.Time = time.Unix(0, int64(tsNs)).UTC()
		s.events = append(s.events, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	rows, err = p.conn().Query(ctx, `SELECT finding_id, rule_id, rule_kind, agent_id, server_name, tool_name, summary,
		session_key, event_ids FROM `+db+"findings FINAL WHERE tenant = ? ORDER BY rule_id, ts, finding_id", tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var f finding
		if err := rows.Scan(&f.ID, &f.Rule, &f.Kind, &f.Agent, &f.Server, &f.Tool, &f.Summary, &f.SessionKey, &f.EventIDs); err != nil {
			t.Fatal(err)
		}
		s.findings = append(s.findings, f)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// callGroup is the stored observations of one call_id.
type callGroup struct {
	id     string
	method string
	tool   string
	first  time.Time
	obs    []*event.Event
}

func (g *callGroup) counted() []*event.Event {
	var out []*event.Event
	for _, e := range g.obs {
		if !e.HasTag(event.TagDuplicate) {
			out = append(out, e)
		}
	}
	return out
}

// groupCalls groups the message events by call_id, in the time order of
// each call's first observation.
func groupCalls(evs []event.Event) []*callGroup {
	byID := map[string]*callGroup{}
	var out []*callGroup
	for i := range evs {
		e := &evs[i]
		if e.Kind != event.KindMessage {
			continue
		}
		g := byID[e.CallID]
		if g == nil {
			g = &callGroup{id: e.CallID, method: e.Method, first: e.Time}
			byID[e.CallID] = g
			out = append(out, g)
		}
		g.obs = append(g.obs, e)
		if e.ToolName != "" && g.tool == "" {
			g.tool = e.ToolName
		}
		if e.Time.Before(g.first) {
			g.first = e.Time
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].first.Before(out[j].first) })
	return out
}

// reverse are the requests an MCP server sends to its client: there the
// CLIENT span is the server's and the SERVER span the agent's (the agent
// side is checked as "client", the server side as "server").
var reverse = map[string]bool{"roots/list": true, "sampling/createMessage": true, "elicitation/create": true}

// attackRules are the rules a planted attack must fire on its call (and,
// for the poisoned description, on the tool definitions of its tools/list).
func attackRules(lang string, c call) []string {
	if lang == "python" {
		switch c.Step {
		case "attack:sensitive-read":
			return []string{"mcp-sensitive-file-access"}
		case "attack:egress-after-read":
			return []string{"mcp-sensitive-read-then-egress"}
		case "attack:ssrf":
			return []string{"mcp-ssrf-internal-address"}
		case "attack:shell-injection":
			return []string{"mcp-shell-injection"}
		case "attack:poisoned-tool-call":
			// The key, passed as the poisoned description asks. The
			// sequence mcp-tool-changed-then-called fires on the first
			// call of add after the listing: the benign one (checked
			// apart).
			return []string{"mcp-secret-in-arguments"}
		case "attack:path-traversal":
			return []string{"mcp-path-traversal"}
		case "discovery":
			if c.Server == "calc-utils" { // advertises the poisoned add
				return []string{"mcp-tool-description-injection"}
			}
		}
		return nil
	}
	switch {
	case c.Step == "mcp-sensitive-read-then-egress" && c.Tool == "read_file":
		return []string{"mcp-sensitive-file-access"} // the read; the sequence ends on http_post
	case c.Step != "" && c.Step != "reverse":
		return []string{c.Step}
	}
	return nil
}

// benignRules may fire on calls that are not attacks: the allowlist rule
// (when a deployment fills its list; the shipped one is empty), a call of
// the tool whose definition was poisoned, and a listing of it.
var benignRules = map[string]bool{"mcp-tool-not-allowlisted": true, "mcp-tool-changed-then-called": true,
	"mcp-tool-description-injection": true}

// obsKind is "client", "server" or "duplicate" (a tagged duplicate).
func obsKind(e *event.Event) string {
	if e.HasTag(event.TagDuplicate) {
		return "duplicate"
	}
	return string(e.Observer)
}

// argsMatch compares stored arguments (JSON, redacted) with what the
// runner sent: same keys, same values, the fake private key redacted.
func argsMatch(stored string, want map[string]any) error {
	var got map[string]any
	if err := json.Unmarshal([]byte(stored), &got); err != nil {
		return fmt.Errorf("not a JSON object: %.200q", stored)
	}
	if len(got) != len(want) {
		return fmt.Errorf("keys %v, want %v", keys(got), keys(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("no %q in %.200q", k, stored)
		}
		if ws, isStr := w.(string); isStr && strings.Contains(ws, "PRIVATE KEY-----") {
			if gs, _ := g.(string); !strings.Contains(gs, "[REDACTED:private_key:") || strings.Contains(gs, "PRIVATE KEY-----") {
				return fmt.Errorf("%s = %.100q, want the key redacted", k, g)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			return fmt.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
	return nil
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// figures is one row of docs/event.md's instrumentation table.
type figures struct {
	calls, rows, counted   int
	serverNames, agentIDs  string
	detected, notDetected  []string
	fired                  []string
	sequenceFindingsByRule map[string]int
}

// knownGaps collects the documented gaps a stack showed; logged once each
// with how often.
type knownGaps map[string]int

func (g knownGaps) add(format string, args ...any) { g[fmt.Sprintf(format, args...)]++ }

func (g knownGaps) log(t *testing.T) {
	for _, k := range sortedKeys2(g) {
		t.Logf("known gap (docs/event.md): %s (%d×)", k, g[k])
	}
}

func sortedKeys2(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// check is one stack's comparison of what ClickHouse holds with what its
// runner did; each method checks one property and fills the figures.
type check struct {
	t    *testing.T
	p    *pipeline
	s    stack
	r    run
	st   stored
	gaps knownGaps
	f    figures

	groups    []*callGroup            // message events by call id, in time order
	byKey     map[string][]*callGroup // "method tool" → calls with a counted observation
	orphan    map[string]bool         // event ids of duplicates kept apart from their call
	wantByKey map[string][]call       // "method tool" → the runner's calls, in order
	matched   map[*callGroup]call     // stored call → the runner's
	callOf    map[string]*callGroup   // event id (tool definitions too) → its call
	toolCalls int                     // tools/call the runner made
}

func checkStack(t *testing.T, p *pipeline, s stack, r run, onTopic []event.Event) {
	c := &check{t: t, p: p, s: s, r: r, st: load(t, p, s.tenant), gaps: knownGaps{}}
	defer c.gaps.log(t)
	dumpStack(t, r, c.st)
	distinct := map[string]bool{}
	for _, e := range onTopic {
		distinct[e.EventID] = true
	}
	if len(distinct) == 0 || len(c.st.events) != len(distinct) {
		t.Fatalf("ClickHouse holds %d events of the tenant, the topic %d distinct", len(c.st.events), len(distinct))
	}
	c.oneCallOneCall()
	c.rollup()
	c.identity()
	c.observations()
	c.findings()
	c.logTable()
}

// oneCallOneCall: the calls of each method the runner made are as many
// distinct call ids (calls with a counted observation), matched to the
// runner's in time order per (method, tool); duplicates are tagged.
func (c *check) oneCallOneCall() {
	t, s := c.t, c.s
	c.groups = groupCalls(c.st.events)
	c.byKey, c.orphan = map[string][]*callGroup{}, map[string]bool{}
	for _, g := range c.groups {
		if len(g.counted()) > 0 {
			k := g.method + " " + g.tool
			c.byKey[k] = append(c.byKey[k], g)
			continue
		}
		// A duplicate exported in another request than its call.
		c.gaps.add("%s: a duplicate observation exported in another request than its call keeps a call id of its own (not counted)", g.method)
		for _, e := range g.obs {
			c.orphan[e.EventID] = true
			if e.AgentID != c.r.AgentID || e.Observer != event.ObserverClient {
				t.Errorf("duplicate %s: %s agent %q", e.EventID, e.Observer, e.AgentID)
			}
		}
	}
	c.wantByKey = map[string][]call{}
	methods := map[string]bool{}
	for _, rc := range c.r.Calls {
		k := rc.Method + " " + rc.Tool
		c.wantByKey[k] = append(c.wantByKey[k], rc)
		methods[rc.Method] = true
		if rc.Method == "tools/call" {
			c.toolCalls++
		}
	}
	c.matched = map[*callGroup]call{}
	for k, want := range c.wantByKey {
		if got := len(c.byKey[k]); got != len(want) {
			t.Errorf("%s: %d distinct call ids, the runner made %d calls", k, got, len(want))
		}
		for i, rc := range want {
			if i < len(c.byKey[k]) {
				c.matched[c.byKey[k][i]] = rc
			}
		}
	}
	for k, gs := range c.byKey {
		if m, _, _ := strings.Cut(k, " "); methods[m] && len(c.wantByKey[k]) == 0 {
			t.Errorf("%s: %d call ids for calls the runner did not make", k, len(gs))
		}
	}
	dupRows := 0
	for _, g := range c.groups {
		if g.method == "tools/call" {
			dupRows += len(g.obs) - len(g.counted())
			c.f.rows += len(g.obs)
		}
	}
	if dupRows != c.toolCalls*s.duplicates {
		t.Errorf("%d tools/call observations tagged duplicate, want %d", dupRows, c.toolCalls*s.duplicates)
	}
	c.f.calls = c.toolCalls
	c.callOf = map[string]*callGroup{}
	byID := map[string]*callGroup{}
	for _, g := range c.groups {
		byID[g.id] = g
		for _, e := range g.obs {
			c.callOf[e.EventID] = g
		}
	}
	for i := range c.st.events {
		if e := &c.st.events[i]; e.Kind == event.KindToolDefinition && byID[e.CallID] != nil {
			c.callOf[e.EventID] = byID[e.CallID]
		}
	}
}

// rollup: calls_per_minute merged across its buckets counts each call
// once. Its buckets include agent_id and server_name, so a call whose
// client and server observations differ there is in two buckets, and the
// API's totals (a sum over buckets) count it in each: CallsTotal must
// return that sum, and it must be the calls made: every observation names
// the agent (the capture packages carry it, or the analyzer's call join
// gives the server observation its client's), and all but one observation
// of a call are tagged call_already_counted (by the enricher or the join)
// and not rolled up, whatever their minute or server name.
func (c *check) rollup() {
	t := c.t
	ctx := context.Background()
	var merged uint64
	if err := c.p.conn().QueryRow(ctx, "SELECT uniqExactMerge(calls_state) FROM `"+c.p.st.Database()+
		"`.calls_per_minute WHERE tenant = ? AND method = 'tools/call'", c.s.tenant).Scan(&merged); err != nil {
		t.Fatal(err)
	}
	if int(merged) != c.toolCalls {
		t.Errorf("calls_per_minute merged counts %d tools/call, the runner made %d", merged, c.toolCalls)
	}
	buckets := 0
	split := map[string]int{} // the dimension a call's observations differ in → calls
	for _, g := range c.groups {
		if g.method != "tools/call" {
			continue
		}
		dims := map[string]bool{}
		per := map[string]map[string]bool{"minute": {}, "agent_id": {}, "server_name": {}, "tool_name": {}, "outcome": {}}
		for _, e := range g.counted() {
			if e.HasTag(enrich.TagCallCounted) {
				continue // the rollup skips it: another observation of the call counts it
			}
			minute := e.Time.Truncate(time.Minute).Format("15:04")
			dims[fmt.Sprint(minute, e.AgentID, e.ServerName, e.ToolName, e.Outcome)] = true
			for k, v := range map[string]string{"minute": minute, "agent_id": e.AgentID, "server_name": e.ServerName,
				"tool_name": e.ToolName, "outcome": string(e.Outcome)} {
				per[k][v] = true
			}
		}
		buckets += len(dims)
		for k, vs := range per {
			if len(vs) > 1 {
				split[k]++
			}
		}
	}
	total, err := c.p.st.CallsTotal(ctx, store.CallsQuery{Tenant: c.s.tenant, From: time.Now().Add(-time.Hour),
		To: time.Now().Add(time.Hour), Methods: []string{"tools/call"}})
	if err != nil {
		t.Fatal(err)
	}
	if int(total) != buckets {
		t.Errorf("CallsTotal = %d tools/call; its buckets hold %d (the runner made %d)", total, buckets, c.toolCalls)
	} else if buckets != c.toolCalls {
		// Every observation names the agent (the capture packages, or the
		// call join): one call is counted once, whatever minute, server
		// name or outcome its observations have.
		var why []string
		for _, k := range sortedKeys2(split) {
			why = append(why, fmt.Sprintf("%s (%d calls)", k, split[k]))
		}
		t.Errorf("CallsTotal = %d tools/call, the runner made %d: the observations of a call differ in %s", total, c.toolCalls, strings.Join(why, ", "))
	}
}

// side is who made an observation: "client" the agent, "server" the MCP
// server ("duplicate" for a tagged duplicate). A server → client
// request's CLIENT span is the server's.
func side(e *event.Event) string {
	k := obsKind(e)
	if reverse[e.Method] {
		return map[string]string{"client": "server", "server": "client"}[k]
	}
	return k
}

// identity: every event has an agent, a session, a call id and a server
// (or the stack's documented gap).
func (c *check) identity() {
	for i := range c.st.events {
		e := &c.st.events[i]
		if e.AgentID == "" || e.SessionKey == "" || e.CallID == "" {
			c.t.Errorf("event %s (%s %s %s): agent %q session %q call %q", e.EventID, e.Observer, e.Method, e.ToolName, e.AgentID, e.SessionKey, e.CallID)
		}
		if e.ServerName == "" && !c.orphan[e.EventID] {
			if _, gap := c.s.serverGaps[side(e)]; !gap {
				c.t.Errorf("event %s (%s %s %s): no server name", e.EventID, obsKind(e), e.Method, e.ToolName)
			}
		}
	}
}

// observations: per call, the fields of every observation against what
// the runner did.
func (c *check) observations() {
	t, s := c.t, c.s
	agents, servers := map[string]bool{}, map[string]bool{}
	for _, g := range c.groups {
		rc, ok := c.matched[g]
		if !ok {
			continue // reported by oneCallOneCall
		}
		what := fmt.Sprintf("%s %s/%s (call %s)", rc.Method, rc.Server, rc.Tool, g.id)
		seen := map[string]int{}
		byAgent := false
		for _, e := range g.obs {
			kind := obsKind(e)
			seen[kind]++
			if kind != "duplicate" {
				agents[e.AgentID] = true
				servers[e.ServerName] = true
			}
			if e.Method != rc.Method || e.ToolName != rc.Tool {
				t.Errorf("%s: %s observation has method %q tool %q", what, kind, e.Method, e.ToolName)
			}
			if e.ServerName != rc.Server {
				if slices.Contains(s.serverGaps[side(e)], e.ServerName) {
					c.gaps.add("%s: %s observations carry server_name %q", rc.Method, kind, e.ServerName)
				} else {
					t.Errorf("%s: %s observation has server_name %q", what, kind, e.ServerName)
				}
			}
			switch {
			case side(e) != "server":
				if e.AgentID != c.r.AgentID {
					t.Errorf("%s: %s observation has agent_id %q, want %q", what, kind, e.AgentID, c.r.AgentID)
				}
				byAgent = true
				// The bare SDK's client span names no server: the join
				// gives it the server observation's, said by a tag.
				if joined := e.HasTag(calljoin.TagJoinedServer); kind == "client" && joined != s.joined {
					t.Errorf("%s: client observation tagged %s: %v, want %v", what, calljoin.TagJoinedServer, joined, s.joined)
				}
			case s.serverAgent == callerAgent:
				if e.AgentID != c.r.AgentID {
					t.Errorf("%s: server observation has agent_id %q, want the caller's %q", what, e.AgentID, c.r.AgentID)
				}
				// The bare SDK's server span names no caller: the agent is
				// the join's (its client observation's), said by a tag.
				if joined := e.HasTag(calljoin.TagJoinedAgent); joined != s.joined {
					t.Errorf("%s: server observation tagged %s: %v, want %v", what, calljoin.TagJoinedAgent, joined, s.joined)
				}
			default:
				t.Fatalf("%s: stack %s has no expected server agent", what, s.id())
			}
			if kind == "duplicate" {
				continue
			}
			if rc.Outcome != "" && string(e.Outcome) != rc.Outcome {
				t.Errorf("%s: %s observation has outcome %q, the runner saw %q", what, kind, e.Outcome, rc.Outcome)
			}
			if rc.RequestID != "" && kind == "client" && e.RequestID == "" && e.TraceID == rc.TraceID && s.requestIDGap {
				c.gaps.add("%s: client observations without the request id (exported in another request)", rc.Method)
			} else if rc.RequestID != "" && kind == "client" && (e.RequestID != rc.RequestID || e.TraceID != rc.TraceID) {
				t.Errorf("%s: client observation has request %q trace %q, the runner sent %q %q", what, e.RequestID, e.TraceID, rc.RequestID, rc.TraceID)
			}
			if rc.Method == "tools/call" {
				if s.content {
					if err := argsMatch(e.Arguments, rc.Arguments); err != nil {
						t.Errorf("%s: %s observation's arguments: %v", what, kind, err)
					}
					if e.Result == "" {
						t.Errorf("%s: %s observation has no result", what, kind)
					}
				} else if e.Arguments != "" || e.Result != "" {
					t.Errorf("%s: %s observation has content without capture: %.100q %.100q", what, kind, e.Arguments, e.Result)
				}
			}
		}
		if !byAgent {
			t.Errorf("%s: no observation names the agent %s", what, c.r.AgentID)
		}
		for kind, n := range seen {
			if n > 1 {
				t.Errorf("%s: %d %s observations in one call", what, n, kind)
			}
		}
		if rc.Method == "tools/call" {
			c.f.counted += len(g.counted())
			if n := len(g.counted()); n != s.observations-s.duplicates {
				t.Errorf("%s: %d observations counted, want %d", what, n, s.observations-s.duplicates)
			}
		}
	}
	c.f.agentIDs, c.f.serverNames = strings.Join(sortedKeys(agents), ", "), strings.Join(sortedKeys(servers), ", ")
}

// ruleCall is a rule that fired on a call.
type ruleCall struct {
	rule string
	call *callGroup
}

// findings: every planted attack where the content is present, on its
// call; without content only the rules that need none; nothing but the
// benign rules on benign calls; one finding per call for match rules.
func (c *check) findings() {
	t, s := c.t, c.s
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, x := range pack.Lists["allowlisted_tools"] {
		allowed[x] = true
	}
	found := map[ruleCall][]finding{}
	fired := map[string]bool{}
	for _, fd := range c.st.findings {
		fired[fd.Rule] = true
		if fd.Agent == "" || fd.SessionKey == "" {
			t.Errorf("finding %s %s: agent %q session %q", fd.Rule, fd.ID, fd.Agent, fd.SessionKey)
		}
		calls := map[*callGroup]bool{}
		for _, id := range fd.EventIDs {
			if g := c.callOf[id]; g != nil {
				calls[g] = true
			}
		}
		if len(calls) == 0 {
			t.Errorf("finding %s %s: events %v are none of the calls'", fd.Rule, fd.ID, fd.EventIDs)
		}
		for g := range calls {
			found[ruleCall{fd.Rule, g}] = append(found[ruleCall{fd.Rule, g}], fd)
			rc := c.matched[g]
			isAttack := attackRules(s.lang, rc) != nil || strings.HasPrefix(rc.Step, "attack")
			// Without content the benign list_directory call is identical
			// to the loop's calls, so the loop's window may include it.
			loopAlike := fd.Rule == "mcp-tool-call-loop" && !s.content && rc.Tool == "list_directory"
			if !isAttack && !benignRules[fd.Rule] && !loopAlike {
				t.Errorf("finding %s on a benign call %s %s/%s", fd.Rule, rc.Method, rc.Server, rc.Tool)
			}
		}
	}
	c.f.fired = sortedKeys(fired)
	for k, fs := range found {
		ids := map[string]bool{}
		for _, fd := range fs {
			ids[fd.ID] = true
		}
		if fs[0].Kind == "match" && len(ids) > 1 {
			t.Errorf("%s: %d findings for one call (%s %s)", k.rule, len(ids), k.call.method, k.call.tool)
		}
		if len(fs) > len(ids) {
			// One row per finding id: the store keeps a stored id's ts
			// (store.InsertFindings), though the client's and the
			// server's finding of one call carry two times.
			t.Errorf("%s: one finding id stored in %d rows", k.rule, len(fs))
		}
	}
	// A sequence completes once per attack, however many sides observed
	// its calls (steps are joined by call id: detect's occurrenceKey).
	c.f.sequenceFindingsByRule = map[string]int{}
	seqIDs := map[string]bool{}
	for _, fd := range c.st.findings {
		if fd.Kind == "sequence" && !seqIDs[fd.ID] {
			seqIDs[fd.ID] = true
			c.f.sequenceFindingsByRule[fd.Rule]++
		}
	}
	for rule, n := range c.f.sequenceFindingsByRule {
		if n != 1 {
			t.Errorf("%s: %d findings for one attack, want 1 (sides observing it: %d)", rule, n, s.observations-s.duplicates)
		}
	}
	// mcp-tool-not-allowlisted is opt-in (it fires only when
	// lists.allowlisted_tools is filled; the shipped list is empty) and a
	// medium match rule: its findings are suppressed per (agent, server,
	// tool) and hour (docs/detections.md, Suppression), so a call is
	// covered by its own finding or by the one its later hits were counted
	// into.
	notAllowlisted := map[string]bool{}
	for _, fd := range c.st.findings {
		if fd.Rule == "mcp-tool-not-allowlisted" {
			notAllowlisted[fd.Agent+"\x00"+fd.Server+"\x00"+fd.Tool] = true
		}
	}
	for g, rc := range c.matched {
		for _, rule := range attackRules(s.lang, rc) {
			label := fmt.Sprintf("%s (%s %s)", rule, rc.Server, rc.Tool)
			if rc.Method == "tools/list" {
				label = fmt.Sprintf("%s (tools/list of %s)", rule, rc.Server)
			}
			if len(found[ruleCall{rule, g}]) > 0 {
				c.f.detected = append(c.f.detected, label)
				continue
			}
			c.f.notDetected = append(c.f.notDetected, label)
			if s.content {
				t.Errorf("planted attack not detected: %s on %s %s/%s", rule, rc.Method, rc.Server, rc.Tool)
			}
		}
		if rc.Method != "tools/call" {
			continue
		}
		// mcp-tool-not-allowlisted needs no content: with a list, it fires
		// when an observation that is counted names a pair not
		// allowlisted, and at least for every pair that truly is not;
		// with the shipped empty list, never.
		listed := len(allowed) > 0
		want := listed && !allowed[rc.Server+"/"+rc.Tool]
		got := len(found[ruleCall{"mcp-tool-not-allowlisted", g}]) > 0
		for _, e := range g.counted() {
			want = want || listed && !allowed[e.ServerName+"/"+e.ToolName]
			got = got || notAllowlisted[e.AgentID+"\x00"+e.ServerName+"\x00"+e.ToolName]
		}
		if got != want {
			t.Errorf("mcp-tool-not-allowlisted on %s/%s: fired %v, want %v", rc.Server, rc.Tool, got, want)
		}
	}
	// The poisoned definition, then a call of that tool.
	label := "mcp-tool-changed-then-called (calc-utils add)"
	if s.lang == "typescript" {
		label = "mcp-tool-changed-then-called (dev-workstation add)"
	}
	changed := false
	for k := range found {
		changed = changed || k.rule == "mcp-tool-changed-then-called" && k.call.tool == "add"
	}
	if changed {
		c.f.detected = append(c.f.detected, label)
	} else {
		c.f.notDetected = append(c.f.notDetected, label)
		if s.content {
			t.Errorf("mcp-tool-changed-then-called did not fire on a call of add")
		}
	}
	// The loop (Python: 15 identical calls of list_directory) is one
	// attack: a threshold finding covers 15 of its calls. It needs no
	// content, so the bare SDK spans detect it too.
	if s.lang == "python" {
		loop := false
		for k := range found {
			loop = loop || k.rule == "mcp-tool-call-loop" && c.matched[k.call].Step == "attack:tool-loop"
		}
		if label := "mcp-tool-call-loop (filesystem list_directory ×15)"; loop {
			c.f.detected = append(c.f.detected, label)
		} else {
			c.f.notDetected = append(c.f.notDetected, label)
			t.Errorf("mcp-tool-call-loop did not fire on the loop of identical calls")
		}
	}
	// Without content only the rules that need none can fire: here the
	// loop's threshold. The static allowlist is off with the shipped empty
	// list, and the learned profile and first-seen rules are still
	// learning (3 days, 2 hours).
	if !s.content {
		for _, rule := range c.f.fired {
			if needsContent[rule] {
				t.Errorf("without content %s fired", rule)
			}
		}
	}
}

// needsContent are the planted attacks' rules that read arguments, results
// or tool definitions: without content they cannot fire.
var needsContent = map[string]bool{"mcp-sensitive-file-access": true, "mcp-sensitive-read-then-egress": true,
	"mcp-ssrf-internal-address": true, "mcp-shell-injection": true, "mcp-tool-description-injection": true,
	"mcp-secret-in-arguments": true, "mcp-path-traversal": true, "mcp-tool-changed-then-called": true,
	"mcp-secret-in-result": true}

// logTable logs the stack's row of docs/event.md's table.
func (c *check) logTable() {
	f := c.f
	sort.Strings(f.detected)
	sort.Strings(f.notDetected)
	c.t.Logf("TABLE %s | tools/call %d | rows %d, counted %d | agent_id: %s | server_name: %s | detected %d: %s | not detected: %s | sequence findings: %v | rules fired: %s",
		c.s.id(), f.calls, f.rows, f.counted, f.agentIDs, f.serverNames, len(f.detected), strings.Join(f.detected, "; "),
		strings.Join(f.notDetected, "; "), f.sequenceFindingsByRule, strings.Join(f.fired, ", "))
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dumpStack(t *testing.T, r run, st stored) {
	if os.Getenv("MCPWATCH_REALSENDERS_DUMP") == "" {
		return
	}
	t.Logf("runner: %s", r.Raw)
	for _, e := range st.events {
		t.Logf("event %s %-9s %-15s %-15s tool=%-14s agent=%q server=%q call=%s ts=%s outcome=%s session=%s tags=%v args=%.80q",
			e.EventID, obsKind(&e), e.Method, e.Kind, e.ToolName, e.AgentID, e.ServerName, e.CallID,
			e.Time.Format("15:04:05.000"), e.Outcome, e.SessionKey, e.Tags, e.Arguments)
	}
	for _, f := range st.findings {
		t.Logf("finding %-40s tool=%-14s server=%q agent=%q events=%v", f.Rule, f.Tool, f.Server, f.Agent, f.EventIDs)
	}
}
