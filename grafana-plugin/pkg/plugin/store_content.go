package plugin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// NoAgentID stands for a stored agent_id of "" (rows written before the
// collector's identity chain, docs/event.md "Identity and correlation"). The
// API never answers an empty agent: groups of such rows are named this, and
// a filter on it selects the rows whose agent_id is empty.
const NoAgentID = "(no agent id)"

// agentOut is how a stored agent_id is answered.
func agentOut(id string) string {
	if id == "" {
		return NoAgentID
	}
	return id
}

// agentIn is the stored agent_id of an answered one (agentOut's inverse).
func agentIn(id string) string {
	if id == NoAgentID {
		return ""
	}
	return id
}

// eqAgent adds the agent filter (NoAgentID: the rows without an agent id).
func (c *cond) eqAgent(v string) {
	if v == NoAgentID {
		c.add("agent_id = ''")
		return
	}
	c.eq("agent_id", v)
}

// Content kinds: what a sender may leave out of its spans (the semconv
// opt-in attributes, docs/event.md).
const (
	ContentArguments   = "arguments"        // gen_ai.tool.call.arguments on tools/call
	ContentResult      = "result"           // gen_ai.tool.call.result on tools/call
	ContentDefinitions = "tool_definitions" // gen_ai.tool.definitions on tools/list
)

// ContentRules are the rules of the detections/ pack that read each kind of
// content: on calls without it they cannot fire (some still fire on what
// else they read: tool names, resource URIs). docs/event.md "Which rules
// need content" is the same table; TestContentRulesMatchPack checks this
// list against ../detections/*.yaml, so a rule that starts reading content
// must be added here.
var ContentRules = map[string][]string{
	ContentArguments: {
		"mcp-cross-server-data-flow", // arguments_size
		"mcp-destructive-command",
		"mcp-destructive-without-approval",
		"mcp-encoded-payload",
		"mcp-path-traversal",
		"mcp-persistence-file-write",
		"mcp-sampling-abuse", // arguments of sampling/createMessage
		"mcp-secret-in-arguments",
		"mcp-sensitive-file-access",
		"mcp-sensitive-read-then-egress",
		"mcp-shell-injection",
		"mcp-ssrf-internal-address",
	},
	ContentResult: {
		"mcp-cross-server-data-flow",       // result_size
		"mcp-destructive-without-approval", // the approval is the result of elicitation/create
		"mcp-result-prompt-injection",
		"mcp-secret-in-result",
	},
	ContentDefinitions: {
		"mcp-tool-changed-then-called",
		"mcp-tool-definition-changed",
		"mcp-tool-description-hidden-characters",
		"mcp-tool-description-injection",
		"mcp-tool-name-collision",
	},
}

// Content says how much of an agent's traffic carries content, counted per
// call (call_id, else event_id; the observations of one call are one call,
// and it carries content when any of them does: arguments_size or
// result_size > 0, which the mapping sets with the text and redaction
// keeps; a tool_definition event of its call id).
type Content struct {
	// Calls are the tools/call calls; WithArguments those carrying arguments.
	Calls         uint64 `json:"calls"`
	WithArguments uint64 `json:"with_arguments"`
	// ResultCalls are the tools/call calls that can have a result (outcome
	// ok or tool_error in an observation; errors and denials have none);
	// WithResult those carrying one.
	ResultCalls uint64 `json:"result_calls"`
	WithResult  uint64 `json:"with_result"`
	// Lists are the tools/list calls; WithDefinitions those that brought
	// tool definitions (tool_definition events of the same call).
	Lists           uint64 `json:"lists"`
	WithDefinitions uint64 `json:"with_definitions"`
	// Level: "full" (every call of each kind carries its content), "none"
	// (none does), "partial", or "no_calls" (neither tools/call nor
	// tools/list in the range).
	Level string `json:"level"`
	// Share is all content seen over all content expected:
	// (WithArguments + WithResult + WithDefinitions) / (Calls + ResultCalls + Lists).
	Share float64 `json:"share"`
	// Missing lists the content kinds some calls lack (ContentRules keys).
	Missing []string `json:"missing"`
	// Since is where the counted calls start: the range's start, or later
	// for an agent measured on its newest calls only (AgentContent).
	Since time.Time `json:"since"`
	// Sources are the instrumentation seen: source/observer pairs of the
	// observations (e.g. "span/client"); the events table keeps no
	// instrumentation scope.
	Sources []string `json:"sources"`
}

func (c *Content) finish() {
	have := c.WithArguments + c.WithResult + c.WithDefinitions
	want := c.Calls + c.ResultCalls + c.Lists
	c.Missing = []string{}
	for _, k := range []struct {
		kind     string
		got, all uint64
	}{{ContentArguments, c.WithArguments, c.Calls}, {ContentResult, c.WithResult, c.ResultCalls}, {ContentDefinitions, c.WithDefinitions, c.Lists}} {
		if k.got < k.all {
			c.Missing = append(c.Missing, k.kind)
		}
	}
	switch {
	case want == 0:
		c.Level = "no_calls"
	case have == 0:
		c.Level, c.Share = "none", 0
	case len(c.Missing) == 0:
		c.Level, c.Share = "full", 1
	default:
		c.Level, c.Share = "partial", float64(have)/float64(want)
	}
	if c.Sources == nil {
		c.Sources = []string{}
	}
	sort.Strings(c.Sources)
}

// Which rows count. isCall: a tools/call message that is not a duplicate
// observation; isList: a tools/list message or one of its definitions (a
// snapshot log record's definitions are a list call of their own).
const (
	isCall       = "kind = 'message' AND method = 'tools/call' AND " + counted
	isList       = "method = 'tools/list'"
	resultFilled = "outcome IN ('ok', 'tool_error')"
)

// contentBudget bounds the calls one read of the agents' events counts: an
// agent with more calls in the range than its share of the budget (the
// budget over the number of agents asked for, at least minContentCalls) is
// measured on its newest calls only, from the point of the range where, at
// its average rate over the range, that share of its calls begins
// (Content.Since; never after its last active minute). Counting calls
// exactly (uniqExact of call ids) over the 10M events of the benchmark costs
// seconds on ClickHouse 18.16; the agents page must answer in ~300 ms
// (docs/benchmarks.md).
const (
	contentBudget   = 20_000
	minContentCalls = 50
)

// agentActivity is what the calls rollup already knows of an agent.
type agentActivity struct {
	ID    string // as answered (NoAgentID for "")
	Calls uint64 // tools/call calls in the range
	Last  time.Time
}

// contentWindows returns each agent's start of its content window.
func contentWindows(f Filter, acts []agentActivity) map[string]time.Time {
	per := contentShare(len(acts))
	out := make(map[string]time.Time, len(acts))
	span := f.To.Sub(f.From)
	for _, a := range acts {
		start := f.From
		if a.Calls > per {
			w := time.Duration(float64(span) * float64(per) / float64(a.Calls))
			s := a.Last.Add(time.Minute - w).Truncate(time.Second)
			if s.After(a.Last) {
				s = a.Last // the whole last active minute: it holds the newest call
			}
			if s.After(start) {
				start = s
			}
		}
		out[a.ID] = start
	}
	return out
}

// contentShare is the calls each of n agents may count.
func contentShare(n int) uint64 {
	return max(uint64(contentBudget/max(n, 1)), minContentCalls)
}

// agentEvents is what AgentContent reads of one agent's events.
type agentEvents struct {
	Content
	name, user, client string
	last               time.Time // newest tools/call
}

// recentWindow is how much of the end of the range Agents reads for every
// agent while it reads the rollup: busy agents' content windows fall in it,
// so only the others need a read of their own once the rollup has named
// them.
const recentWindow = 5 * time.Minute

// recent is the start of the recentWindow of f.
func (f Filter) recent() time.Time {
	if r := f.To.Add(-recentWindow); r.After(f.From) {
		return r
	}
	return f.From
}

// AgentContent reads, per agent, its identity (any of its rows), its newest
// tools/call and what content its calls carry: over the whole range for
// agents within their share of contentBudget, else over their newest calls
// (contentWindows). The agents read over the whole range and the others are
// two queries, run at once, so that a quiet agent never makes the busy ones
// be read from the start of the range. Each reads the agents' tools/call
// and tools/list events once (primary key tenant, agent_id, ts: the listed
// agents' granules in their windows). recent, when not nil, is what
// agentEvents read of every agent from f.recent() on: an agent whose window
// starts there or later, or that made at least its share of calls there, is
// counted on it (Since = f.recent()) and needs no read of its own.
func (s *Store) AgentContent(ctx context.Context, f Filter, acts []agentActivity, recent map[string]*agentEvents) (map[string]*agentEvents, error) {
	starts := contentWindows(f, acts)
	var whole, newest []string
	out := map[string]*agentEvents{}
	per := contentShare(len(acts))
	for _, a := range acts {
		if x := recent[a.ID]; x != nil && (!starts[a.ID].Before(f.recent()) || x.Calls >= per) {
			x.Since = f.recent().UTC()
			x.finish()
			out[a.ID] = x
			continue
		}
		if starts[a.ID].Equal(f.From) {
			whole = append(whole, a.ID)
		} else {
			newest = append(newest, a.ID)
		}
	}
	var (
		res  [2]map[string]*agentEvents
		errs [2]error
		wg   sync.WaitGroup
	)
	for i, ids := range [][]string{whole, newest} {
		if len(ids) == 0 {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); res[i], errs[i] = s.agentEvents(ctx, f, ids, starts, time.Time{}) }()
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	for _, a := range acts {
		if out[a.ID] != nil {
			continue
		}
		x := res[0][a.ID]
		if x == nil {
			x = res[1][a.ID]
		}
		if x == nil {
			x = &agentEvents{}
		}
		x.Since = starts[a.ID].UTC()
		x.finish()
		out[a.ID] = x
	}
	return out, nil
}

// agentEvents reads agents ids, each from its start on; with ids nil, every
// agent from all on.
func (s *Store) agentEvents(ctx context.Context, f Filter, ids []string, starts map[string]time.Time, all time.Time) (map[string]*agentEvents, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	stored := make([]string, len(ids))
	from := make([]uint32, len(ids))
	first := f.To
	if ids == nil {
		first = all
	}
	for i, id := range ids {
		from[i] = uint32(starts[id].Unix())
		if starts[id].Before(first) {
			first = starts[id]
		}
		if id == NoAgentID {
			id = ""
		}
		stored[i] = id
	}
	var c cond
	c.add("ts <= toDateTime(?) AND method IN ('tools/call', 'tools/list')", f.to())
	c.tenant(f.Tenant, f.Tenants)
	c.eq("server_name", f.Server)
	c.eq("tool_name", f.Tool)
	if ids != nil {
		c.add("agent_id IN (SELECT arrayJoin(?))", stored)
	} else {
		c.eqAgent(f.Agent)
	}
	if len(ids) > 1 && !first.Equal(f.From) {
		c.add("toUInt32(ts) >= transform(agent_id, ?, ?, toUInt32(0))", stored, from)
	}
	// PREWHERE on ts: other columns are read only for the windows' granules.
	q := "SELECT agent_id, any(agent_name), any(user_id), any(client_name), maxIf(ts, " + isCall + ")," +
		" uniqExactIf(" + callKey + ", " + isCall + ")," +
		" uniqExactIf(" + callKey + ", " + isCall + " AND arguments_size > 0)," +
		" uniqExactIf(" + callKey + ", " + isCall + " AND " + resultFilled + ")," +
		" uniqExactIf(" + callKey + ", " + isCall + " AND " + resultFilled + " AND result_size > 0)," +
		" uniqExactIf(" + callKey + ", " + isList + ")," +
		" uniqExactIf(" + callKey + ", " + isList + " AND kind = 'tool_definition')," +
		" groupUniqArray(concat(toString(source), '/', toString(observer)))" +
		" FROM " + s.t("events") + " PREWHERE ts >= toDateTime(?) AND ts <= toDateTime(?) WHERE " + c.String() + " GROUP BY agent_id"
	rows, err := s.conn.Query(ctx, q, append([]any{first.Unix(), f.to()}, c.args...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query agent events: %w", err)
	}
	defer rows.Close()
	out := map[string]*agentEvents{}
	for rows.Next() {
		var id string
		var x agentEvents
		if err := rows.Scan(&id, &x.name, &x.user, &x.client, &x.last, &x.Calls, &x.WithArguments, &x.ResultCalls, &x.WithResult, &x.Lists, &x.WithDefinitions, &x.Sources); err != nil {
			return nil, fmt.Errorf("cannot scan agent events: %w", err)
		}
		x.last = x.last.UTC()
		out[agentOut(id)] = &x
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read agent events: %w", err)
	}
	return out, nil
}

// contentRulesText is ContentRules for answers: kind → rule ids (sorted).
func contentRulesText() map[string][]string {
	m := make(map[string][]string, len(ContentRules))
	for k, v := range ContentRules {
		r := append([]string(nil), v...)
		sort.Strings(r)
		m[k] = r
	}
	return m
}
