package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/detect/defdiff"
	"github.com/mcpwatch/mcpwatch/internal/event"
)

// The queries below are correct under replays: calls are counted from
// callsSource (sealed exact counts for sealed minutes, uniqExactMerge over
// the rollup's uniqExact(event_id) states for the others), event lists
// read `events FINAL`, and the tool inventory takes min/max/argMax over the
// key. User input only ever travels as bound parameters; the few SQL
// fragments chosen by a caller (a group-by column, a bucket function) come
// from fixed allow-lists.

// CallsGroupBy is the dimension CallsOverTime splits series by.
type CallsGroupBy string

const (
	GroupNone    CallsGroupBy = ""
	GroupAgent   CallsGroupBy = "agent_id"
	GroupServer  CallsGroupBy = "server_name"
	GroupTool    CallsGroupBy = "tool_name"
	GroupOutcome CallsGroupBy = "outcome"
	GroupMethod  CallsGroupBy = "method"
)

var groupExpr = map[CallsGroupBy]string{
	GroupNone: "''", GroupAgent: "agent_id", GroupServer: "server_name",
	GroupTool: "tool_name", GroupOutcome: "toString(outcome)", GroupMethod: "method",
}

var stepExpr = map[time.Duration]string{
	time.Minute:      "minute",
	5 * time.Minute:  "toStartOfFiveMinute(minute)",
	15 * time.Minute: "toStartOfFifteenMinutes(minute)",
	time.Hour:        "toStartOfHour(minute)",
	24 * time.Hour:   "toStartOfDay(minute)",
}

// CallsQuery selects calls from the per-minute rollup.
type CallsQuery struct {
	Tenant string    // required
	From   time.Time // inclusive
	To     time.Time // exclusive
	// Step is the bucket width: 1m, 5m, 15m, 1h or 24h. Default 1m.
	Step    time.Duration
	GroupBy CallsGroupBy
	// Filters; empty means all.
	AgentIDs, ServerNames, ToolNames, Methods, Outcomes []string
}

// CallsPoint is one bucket of one series.
type CallsPoint struct {
	Time  time.Time `json:"time"`
	Key   string    `json:"key"` // the GroupBy value, "" without grouping
	Calls uint64    `json:"calls"`
}

type where struct {
	clauses []string
	args    []any
}

func (w *where) add(clause string, args ...any) {
	w.clauses = append(w.clauses, clause)
	w.args = append(w.args, args...)
}

// in adds has(?, col) when vals is non-empty (`IN ?` fails on 18.16).
func (w *where) in(col string, vals []string) {
	if len(vals) > 0 {
		w.add("has(?, "+col+")", vals)
	}
}

func (w *where) String() string { return strings.Join(w.clauses, " AND ") }

// CallsOverTime returns call counts per bucket and group key, ordered by
// time then key. Counts are distinct event ids, so replays do not change them.
func (s *Store) CallsOverTime(ctx context.Context, q CallsQuery) ([]CallsPoint, error) {
	if q.Step == 0 {
		q.Step = time.Minute
	}
	bucket, ok := stepExpr[q.Step]
	if !ok {
		return nil, fmt.Errorf("cannot query calls: step %s is not one of 1m, 5m, 15m, 1h, 24h", q.Step)
	}
	key, ok := groupExpr[q.GroupBy]
	if !ok {
		return nil, fmt.Errorf("cannot query calls: cannot group by %q", q.GroupBy)
	}
	var w where
	w.add("tenant = ?", q.Tenant)
	w.add("minute >= ?", dt(q.From))
	w.add("minute < ?", dt(q.To))
	w.in("agent_id", q.AgentIDs)
	w.in("server_name", q.ServerNames)
	w.in("tool_name", q.ToolNames)
	w.in("method", q.Methods)
	w.in("toString(outcome)", q.Outcomes)
	dims := "minute, agent_id, server_name, tool_name, method, outcome"
	src, args := s.callsSource(dims, q.Tenant, q.From, q.To, w)
	sql := "SELECT " + bucket + " AS t, " + key + " AS k, sum(c) AS calls FROM " + src + " GROUP BY t, k ORDER BY t, k"
	w.args = args
	rows, err := s.conn.Query(ctx, sql, w.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query calls: %w", err)
	}
	defer rows.Close()
	var out []CallsPoint
	for rows.Next() {
		var p CallsPoint
		if err := rows.Scan(&p.Time, &p.Key, &p.Calls); err != nil {
			return nil, fmt.Errorf("cannot read calls: %w", err)
		}
		p.Time = p.Time.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// CallsTotal is the number of distinct calls matching q (Step and GroupBy ignored).
func (s *Store) CallsTotal(ctx context.Context, q CallsQuery) (uint64, error) {
	q.Step, q.GroupBy = 24*time.Hour, GroupNone
	// Summing per-day distinct counts is exact: an event id has one ts, so
	// it falls in exactly one bucket.
	pts, err := s.CallsOverTime(ctx, q)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, p := range pts {
		n += p.Calls
	}
	return n, nil
}

// ConversationQuery selects one session's or one conversation's events.
type ConversationQuery struct {
	Tenant string // required
	// Exactly one of SessionKey, SessionID, ConversationID, TraceID.
	SessionKey, SessionID, ConversationID, TraceID string
	// ToolCallsOnly keeps only tools/call messages.
	ToolCallsOnly bool
	Limit         int // default 1000, max 10000
}

// Conversation returns the matching events in time order (ts_ns, then
// event_id), each once even before replays have merged.
func (s *Store) Conversation(ctx context.Context, q ConversationQuery) ([]event.Event, error) {
	var w where
	w.add("tenant = ?", q.Tenant)
	n := 0
	for col, v := range map[string]string{"session_key": q.SessionKey, "session_id": q.SessionID, "conversation_id": q.ConversationID, "trace_id": q.TraceID} {
		if v != "" {
			w.add(col+" = ?", v)
			n++
		}
	}
	if n != 1 {
		return nil, fmt.Errorf("cannot query conversation: set exactly one of session key, session id, conversation id, trace id")
	}
	if q.ToolCallsOnly {
		w.add("kind = 'message' AND method = 'tools/call'")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	if limit > 10000 {
		limit = 10000
	}
	w.args = append(w.args, limit)
	return s.queryEvents(ctx, "WHERE "+w.String()+" ORDER BY ts_ns, event_id LIMIT ?", w.args...)
}

func (s *Store) queryEvents(ctx context.Context, tail string, args ...any) ([]event.Event, error) {
	var out []event.Event
	err := s.scanEvents(ctx, true, tail, args, func(e *event.Event) error {
		out = append(out, *e)
		return nil
	})
	return out, err
}

// scanEvents runs SELECT <every event column> FROM events [FINAL] <tail>
// and hands each row, as the ingest role stored it, to fn (a fresh event
// per row). The one row → event.Event mapping of the package.
func (s *Store) scanEvents(ctx context.Context, final bool, tail string, args []any, fn func(e *event.Event) error) error {
	from := " FROM " + s.table("events") + " "
	if final {
		from += "FINAL "
	}
	sql := "SELECT " + strings.Join(eventColumns, ", ") + from + tail
	rows, err := s.conn.Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("cannot query events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e event.Event
		var kind, source, observer, outcome string
		var tsNs uint64
		if err := rows.Scan(&e.EventID, &e.Tenant, &kind, &e.Time, &tsNs, &e.DurationNs, &source, &observer,
			&e.TraceID, &e.SpanID, &e.ParentSpanID, &e.ServiceName, &e.ServiceInstance, &e.HostName,
			&e.Method, &e.ProtocolVersion, &e.Transport, &e.SessionID, &e.RequestID, &e.ConversationID,
			&e.SessionKey, &e.AgentID, &e.AgentName, &e.UserID, &e.ClientName, &e.ClientVersion,
			&e.ClientAddress, &e.UserAgent, &e.ServerName, &e.ServerVersion, &e.ServerAddress,
			&e.ServerPort, &e.ToolName, &e.ToolCallID, &e.PromptName, &e.ResourceURI, &e.Arguments,
			&e.Result, &e.ArgumentsSize, &e.ResultSize, &outcome, &e.ErrorType, &e.StatusCode,
			&e.Origin, &e.TokenSubject, &e.TokenAudience, &e.TokenExpires, &e.Scopes,
			&e.ToolDescription, &e.ToolInputSchema, &e.ToolAnnotations, &e.ToolDefinitionHash,
			&e.Tags, &e.AttrKeys, &e.AttrValues, &e.IngestedAt, &e.CallID); err != nil {
			return fmt.Errorf("cannot read event: %w", err)
		}
		e.Kind, e.Source, e.Observer, e.Outcome = event.Kind(kind), event.Source(source), event.Observer(observer), event.Outcome(outcome)
		if tsNs > 0 {
			e.Time = time.Unix(0, int64(tsNs)).UTC()
		} else {
			e.Time = e.Time.UTC()
		}
		if e.TokenExpires.Unix() == 0 {
			e.TokenExpires = time.Time{}
		} else {
			e.TokenExpires = e.TokenExpires.UTC()
		}
		e.IngestedAt = e.IngestedAt.UTC()
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read events: %w", err)
	}
	return nil
}

// Graph is one agent's servers and tools: nodes and weighted edges.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// GraphNode is an agent, a server or a tool. Tool ids are "tool:server/tool".
type GraphNode struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // agent, server, tool
	Label string `json:"label"`
	Calls uint64 `json:"calls"`
}

// GraphEdge links agent→server and server→tool with the calls between them.
type GraphEdge struct {
	Source string `json:"source"`
	Target string `json:"target"`
	Calls  uint64 `json:"calls"`
}

// AgentGraph returns the servers and tools agentID called in [from, to).
func (s *Store) AgentGraph(ctx context.Context, tenant, agentID string, from, to time.Time) (Graph, error) {
	var w where
	w.add("tenant = ?", tenant)
	w.add("agent_id = ?", agentID)
	w.add("minute >= ?", dt(from))
	w.add("minute < ?", dt(to))
	src, args := s.callsSource("server_name, tool_name", tenant, from, to, w)
	rows, err := s.conn.Query(ctx, "SELECT server_name, tool_name, sum(c) AS calls FROM "+src+
		" GROUP BY server_name, tool_name ORDER BY server_name, tool_name", args...)
	if err != nil {
		return Graph{}, fmt.Errorf("cannot query agent graph: %w", err)
	}
	defer rows.Close()
	agent := GraphNode{ID: "agent:" + agentID, Kind: "agent", Label: agentID}
	var g Graph
	servers := map[string]int{} // server → index in g.Nodes
	for rows.Next() {
		var server, tool string
		var calls uint64
		if err := rows.Scan(&server, &tool, &calls); err != nil {
			return Graph{}, fmt.Errorf("cannot read agent graph: %w", err)
		}
		agent.Calls += calls
		si, ok := servers[server]
		if !ok {
			si = len(g.Nodes)
			servers[server] = si
			g.Nodes = append(g.Nodes, GraphNode{ID: "server:" + server, Kind: "server", Label: server})
		}
		g.Nodes[si].Calls += calls
		if tool != "" {
			id := "tool:" + server + "/" + tool
			g.Nodes = append(g.Nodes, GraphNode{ID: id, Kind: "tool", Label: tool, Calls: calls})
			g.Edges = append(g.Edges, GraphEdge{Source: "server:" + server, Target: id, Calls: calls})
		}
	}
	if err := rows.Err(); err != nil {
		return Graph{}, fmt.Errorf("cannot read agent graph: %w", err)
	}
	for _, n := range g.Nodes {
		if n.Kind == "server" {
			g.Edges = append(g.Edges, GraphEdge{Source: agent.ID, Target: n.ID, Calls: n.Calls})
		}
	}
	g.Nodes = append([]GraphNode{agent}, g.Nodes...)
	return g, nil
}

// ToolDefinition is one version of a tool's definition.
type ToolDefinition struct {
	Tenant         string    `json:"tenant"`
	ServerName     string    `json:"server_name"`
	ToolName       string    `json:"tool_name"`
	DefinitionHash string    `json:"definition_hash"`
	FirstSeen      time.Time `json:"first_seen"`
	LastSeen       time.Time `json:"last_seen"`
	Description    string    `json:"description"`
	InputSchema    string    `json:"input_schema"`
	Annotations    string    `json:"annotations"`
	Source         string    `json:"source"`
	FirstEventID   string    `json:"first_event_id"`
	ServerVersion  string    `json:"server_version"`
	// Facts are what the definition says about its reach (defdiff); Diff
	// is what changed from the tool's previous definition (nil for the
	// first), graded as mcp-tool-definition-changed grades it.
	Facts defdiff.Facts   `json:"facts"`
	Diff  *DefinitionDiff `json:"diff,omitempty"`
}

// DefinitionDiff is a definition's change from the one before it.
type DefinitionDiff struct {
	defdiff.Diff
	PreviousHash    string   `json:"previous_hash"`
	PreviousVersion string   `json:"previous_version"`
	VersionBump     bool     `json:"version_bump"`
	Widening        []string `json:"widening"`
	Severity        string   `json:"severity"`
	Change          string   `json:"change"`
}

// ToolDefinitionHistory returns every definition a tool has had, oldest
// first. toolName "" lists every tool of the server.
func (s *Store) ToolDefinitionHistory(ctx context.Context, tenant, serverName, toolName string) ([]ToolDefinition, error) {
	var w where
	w.add("tenant = ?", tenant)
	w.add("server_name = ?", serverName)
	if toolName != "" {
		w.add("tool_name = ?", toolName)
	}
	rows, err := s.conn.Query(ctx, "SELECT tenant, server_name, tool_name, definition_hash, min(first_seen) AS fs, max(last_seen), "+
		"argMax(description, last_seen), argMax(input_schema, last_seen), argMax(annotations, last_seen), argMax(source, last_seen), "+
		"argMin(first_event_id, first_seen), argMin(server_version, first_seen), argMax(facts, last_seen) FROM "+s.table("tool_definitions")+" WHERE "+w.String()+
		" GROUP BY tenant, server_name, tool_name, definition_hash ORDER BY tool_name, fs, definition_hash", w.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query tool definitions: %w", err)
	}
	defer rows.Close()
	var out []ToolDefinition
	for rows.Next() {
		var d ToolDefinition
		var facts string
		if err := rows.Scan(&d.Tenant, &d.ServerName, &d.ToolName, &d.DefinitionHash, &d.FirstSeen, &d.LastSeen,
			&d.Description, &d.InputSchema, &d.Annotations, &d.Source, &d.FirstEventID, &d.ServerVersion, &facts); err != nil {
			return nil, fmt.Errorf("cannot read tool definitions: %w", err)
		}
		d.FirstSeen, d.LastSeen = d.FirstSeen.UTC(), d.LastSeen.UTC()
		var ok bool
		if d.Facts, ok = defdiff.Decode(facts); !ok {
			// A row written before facts were stored (schema 0023).
			d.Facts = defdiff.Extract(d.Description, d.InputSchema, d.Annotations)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read tool definitions: %w", err)
	}
	// Rows come per tool in first-seen order: each diffs against the one before.
	for i := 1; i < len(out); i++ {
		prev, cur := &out[i-1], &out[i]
		if prev.ServerName != cur.ServerName || prev.ToolName != cur.ToolName {
			continue
		}
		diff := defdiff.Compare(prev.Facts, cur.Facts)
		bump := prev.ServerVersion != "" && cur.ServerVersion != "" && prev.ServerVersion != cur.ServerVersion
		cur.Diff = &DefinitionDiff{Diff: diff, PreviousHash: prev.DefinitionHash, PreviousVersion: prev.ServerVersion,
			VersionBump: bump, Widening: diff.Widening(), Severity: diff.Severity(bump), Change: diff.String()}
	}
	return out, nil
}

// callsSource is a FROM source with the columns dims plus c, the number of
// distinct calls of each row, for the rows of calls_per_minute matching w
// (which must bound minute to [from, to)). Minutes the analyzer's sealer
// (internal/rollup) has sealed and that are still clean — no insert into
// them since the seal — are read as plain counts from calls_sealed (rows of
// the recorded seal version only); every other minute as uniqExactMerge over
// calls_per_minute. Each call is counted exactly once either way, replays
// or not.
func (s *Store) callsSource(dims, tenant string, from, to time.Time, w where) (string, []any) {
	state := "(SELECT tenant, minute, maxMerge(sealed) AS s, maxMerge(dirty) AS d FROM " + s.table("calls_seal_state") +
		" WHERE tenant = ? AND minute >= ? AND minute < ? GROUP BY tenant, minute)"
	sargs := []any{tenant, dt(from), dt(to)}
	var args []any
	sealed := "SELECT " + dims + ", calls AS c FROM " + s.table("calls_sealed") + " WHERE " + w.String() +
		" AND (tenant, minute, version) IN (SELECT tenant, minute, s FROM " + state + " WHERE s > d)"
	args = append(append(args, w.args...), sargs...)
	unsealed := "SELECT " + dims + ", uniqExactMerge(calls_state) AS c FROM " + s.table("calls_per_minute") +
		" WHERE " + w.String() + " AND (tenant, minute) NOT IN (SELECT tenant, minute FROM " + state + " WHERE s > d) GROUP BY " + dims
	args = append(append(args, w.args...), sargs...)
	return "(" + sealed + " UNION ALL " + unsealed + ")", args
}

// CountDistinctEvents is the number of distinct event ids of a tenant (all
// tenants when tenant is ""): what a user sees, replays or not.
func (s *Store) CountDistinctEvents(ctx context.Context, tenant string) (uint64, error) {
	var n uint64
	var err error
	if tenant == "" {
		err = s.conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+s.table("events")).Scan(&n)
	} else {
		err = s.conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+s.table("events")+" WHERE tenant = ?", tenant).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot count events: %w", err)
	}
	return n, nil
}
