package plugin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Store runs the plugin's read queries. Every query is parameterized (`?`);
// only the validated database name is spliced in. The SQL stays inside the
// 18.16-compatible subset (docs/architecture.md). Counts survive replays: events are
// counted as distinct calls (call_id, else event_id; or from the
// calls_per_minute rollup via uniqExactMerge), incidents are read with FINAL.
type Store struct {
	conn    driver.Conn
	db      string
	timeout time.Duration
}

// OpenStore opens a native connection (it does not check it; see Health).
func OpenStore(st Settings) (*Store, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{st.ClickHouseAddress},
		Auth:        clickhouse.Auth{Username: st.Username, Password: st.Password},
		Protocol:    clickhouse.Native,
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open clickhouse connection: %w", err)
	}
	return &Store{conn: conn, db: st.Database, timeout: time.Duration(st.TimeoutSeconds) * time.Second}, nil
}

// Close closes the connection.
func (s *Store) Close() error { return s.conn.Close() }

func (s *Store) t(name string) string { return s.db + "." + name }

// Filter is the common query scope. Empty strings mean "all".
type Filter struct {
	From, To time.Time
	Tenant   string
	// Tenants is the reader's scope (TenantAccess): nil = every tenant,
	// empty = none. It is ANDed with Tenant in every query.
	Tenants []string
	Agent   string
	Server  string
	Tool    string
	Step    int64 // bucket width in seconds for time series
	Limit   int
}

func (f Filter) from() int64 { return f.From.Unix() }
func (f Filter) to() int64   { return f.To.Unix() }

func (f Filter) limit(def, max int) int {
	if f.Limit <= 0 {
		return def
	}
	if f.Limit > max {
		return max
	}
	return f.Limit
}

// step returns a bucket width giving at most ~200 points, at least 60 s.
func (f Filter) step() int64 {
	if f.Step >= 60 {
		return f.Step
	}
	span := int64(f.To.Sub(f.From).Seconds())
	st := span / 200
	for _, c := range []int64{60, 300, 600, 1800, 3600, 10800, 21600, 86400} {
		if st <= c {
			return c
		}
	}
	return 86400
}

// cond collects a WHERE clause and its bound arguments. Optional filters
// are added only when set: a `(? = ” OR col = ?)` form would make
// ClickHouse read the column for every row and keep it from using the
// primary key (events are ordered by tenant, agent_id, ts).
type cond struct {
	parts []string
	args  []any
}

func (c *cond) add(part string, args ...any) {
	c.parts = append(c.parts, part)
	c.args = append(c.args, args...)
}

func (c *cond) eq(col, v string) {
	if v != "" {
		c.add(col+" = ?", v)
	}
}

// tenant adds the tenant filter and the reader's scope (nil = all tenants).
func (c *cond) tenant(one string, scope []string) {
	c.eq("tenant", one)
	if scope != nil {
		c.add(tenantIn(scope))
		if len(scope) > 0 {
			c.args = append(c.args, tenantSet(scope))
		}
	}
}

// tenantIn is the scope condition, bound to tenantSet(scope),
// or "0" (no rows) for an empty scope, which IN () cannot express.
func tenantIn(scope []string) string {
	if len(scope) == 0 {
		return "0"
	}
	return "tenant IN (SELECT arrayJoin(?))"
}

// tenantSet is the array argument of tenantIn (the IN subquery keeps the
// primary key usable: tables are ordered by tenant first).
func tenantSet(scope []string) []string { return append([]string(nil), scope...) }

// scopeAnd is " AND " + tenantIn(scope), or "" when unscoped (nil).
func scopeAnd(scope []string) string {
	if scope == nil {
		return ""
	}
	return " AND " + tenantIn(scope)
}

// scopeArgs are the arguments of tenantIn(scope).
func scopeArgs(scope []string) []any {
	if len(scope) == 0 {
		return nil
	}
	return []any{tenantSet(scope)}
}

func (c *cond) String() string { return strings.Join(c.parts, " AND ") }

// rollupWhere filters calls_per_minute and calls_sealed (same columns).
func (f Filter) rollupWhere() (string, []any) {
	var c cond
	c.add("minute >= toDateTime(?) AND minute <= toDateTime(?)", f.from(), f.to())
	f.rollupFilters(&c)
	return c.String(), c.args
}

func (f Filter) rollupFilters(c *cond) {
	c.add("method = 'tools/call'")
	c.tenant(f.Tenant, f.Tenants)
	c.eqAgent(f.Agent)
	c.eq("server_name", f.Server)
	c.eq("tool_name", f.Tool)
}

// eventsWhere filters events (tool calls only).
func (f Filter) eventsWhere() (string, []any) {
	var c cond
	c.add("ts >= toDateTime(?) AND ts <= toDateTime(?) AND kind = 'message' AND method = 'tools/call'", f.from(), f.to())
	c.tenant(f.Tenant, f.Tenants)
	c.eqAgent(f.Agent)
	c.eq("server_name", f.Server)
	c.eq("tool_name", f.Tool)
	return c.String(), c.args
}

// callsSource is a FROM source with the columns dims plus c, the number of
// distinct calls of each row, over the filter's minutes. The analyzer's
// sealer (schema 0010–0015) stores exact counts of closed minutes and whole
// hours; a bucket is sealed while its newest seal is newer than its newest
// insert (late or replayed events make it dirty at once). So the source is:
// whole hours inside the range that are sealed, from calls_sealed_hourly
// (only when hourly is true: dims must not need minutes then); other sealed
// minutes from calls_sealed (or calls_sealed_totals when only minute,
// method and outcome matter); every other minute as uniqExactMerge over
// calls_per_minute. Only rows of the recorded seal version are read, so each
// call is counted exactly once either way. Sum c; distinct values of dims
// are also exact. dims are plain column names of calls_per_minute.
func (s *Store) callsSource(ctx context.Context, dims string, f Filter, hourly bool) (string, []any, error) {
	w, wargs := f.rollupWhere()
	var sc cond
	sc.add("minute >= toDateTime(?) AND minute <= toDateTime(?)", f.from(), f.to())
	sc.tenant(f.Tenant, f.Tenants)
	state := "(SELECT tenant, minute, maxMerge(sealed) AS s, maxMerge(dirty) AS d FROM " + s.t("calls_seal_state") +
		" WHERE " + sc.String() + " GROUP BY tenant, minute)"
	var args []any
	var parts []string
	notHours, hargs := "", []any(nil)
	if hourly {
		hours := "(SELECT tenant, toStartOfHour(minute) AS h, maxMerge(hour_sealed) AS hs, maxMerge(dirty) AS hd FROM " + s.t("calls_seal_state") +
			" WHERE " + sc.String() + " GROUP BY tenant, h HAVING hs > hd AND h >= toDateTime(?) AND toUInt32(h) + 3540 <= ?)"
		hargs = append(append(hargs, sc.args...), f.from(), f.to())
		// Which hours are sealed for every tenant: the minute parts below
		// need not read them (the primary key skips them).
		skip, err := s.sealedHours(ctx, sc, f)
		if err != nil {
			return "", nil, err
		}
		var hc cond
		hc.add("hour >= toDateTime(?) AND hour <= toDateTime(?)", f.from(), f.to())
		f.rollupFilters(&hc)
		hdims := strings.ReplaceAll(dims, "minute", "hour AS minute")
		parts = append(parts, "SELECT "+hdims+", calls AS c FROM "+s.t("calls_sealed_hourly")+" WHERE "+hc.String()+
			" AND (tenant, hour, version) IN (SELECT tenant, h, hs FROM "+hours+")")
		args = append(append(args, hc.args...), hargs...)
		notHours = " AND (tenant, toStartOfHour(minute)) NOT IN (SELECT tenant, h FROM " + hours + ")"
		if len(skip) > 0 {
			// The range minus the skipped hours, as minute ranges.
			var ranges []string
			from := f.from()
			for _, h := range skip {
				if h > from {
					ranges = append(ranges, "(minute >= toDateTime(?) AND minute < toDateTime(?))")
					wargs = append(wargs, from, h)
				}
				from = h + 3600
			}
			if from <= f.to() {
				ranges = append(ranges, "(minute >= toDateTime(?) AND minute <= toDateTime(?))")
				wargs = append(wargs, from, f.to())
			}
			if len(ranges) == 0 {
				ranges = append(ranges, "0")
			}
			w += " AND (" + strings.Join(ranges, " OR ") + ")"
		}
	}
	// Without agent, server or tool in dims or filters, the per-outcome
	// totals of the same seals are enough (a few rows per minute).
	sealedMinutes := "calls_sealed"
	if f.Agent == "" && f.Server == "" && f.Tool == "" && !strings.Contains(dims, "agent_id") && !strings.Contains(dims, "server_name") && !strings.Contains(dims, "tool_name") {
		sealedMinutes = "calls_sealed_totals"
	}
	parts = append(parts, "SELECT "+dims+", calls AS c FROM "+s.t(sealedMinutes)+" WHERE "+w+
		" AND (tenant, minute, version) IN (SELECT tenant, minute, s FROM "+state+" WHERE s > d)"+notHours)
	args = append(append(append(args, wargs...), sc.args...), hargs...)
	// The unsealed minutes are the recent tail plus any dirty ones: start at
	// the first dirty minute or after the last sealed one, whichever is
	// earlier, so the primary key skips the sealed past.
	parts = append(parts, "SELECT "+dims+", uniqExactMerge(calls_state) AS c FROM "+s.t("calls_per_minute")+
		" PREWHERE minute >= (SELECT if(countIf(s <= d) > 0, least(minIf(minute, s <= d), maxIf(minute, s > d) + 60), maxIf(minute, s > d) + 60) FROM "+state+")"+
		" AND (tenant, minute) NOT IN (SELECT tenant, minute FROM "+state+" WHERE s > d)"+notHours+
		" WHERE "+w+" GROUP BY "+dims)
	args = append(append(append(append(args, sc.args...), sc.args...), hargs...), wargs...)
	return "(" + strings.Join(parts, " UNION ALL ") + ")", args, nil
}

// sealedHours returns the starts (ascending, unix seconds) of the whole
// hours inside f's range that are sealed and clean for every tenant with
// calls in them.
func (s *Store) sealedHours(ctx context.Context, sc cond, f Filter) ([]int64, error) {
	rows, err := s.conn.Query(ctx, "SELECT toUInt32(h) AS hh FROM (SELECT tenant, toStartOfHour(minute) AS h, maxMerge(hour_sealed) AS hs, maxMerge(dirty) AS hd FROM "+
		s.t("calls_seal_state")+" WHERE "+sc.String()+" GROUP BY tenant, h) WHERE h >= toDateTime(?) AND toUInt32(h) + 3540 <= ?"+
		" GROUP BY hh HAVING min(hs > hd) = 1 ORDER BY hh", append(append([]any(nil), sc.args...), f.from(), f.to())...)
	if err != nil {
		return nil, fmt.Errorf("cannot query sealed hours: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var h uint32
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("cannot scan sealed hours: %w", err)
		}
		out = append(out, int64(h))
	}
	return out, rows.Err()
}

func (s *Store) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// Totals are the overview counters.
type Totals struct {
	Calls        uint64  `json:"calls"`
	Errors       uint64  `json:"errors"`
	Denials      uint64  `json:"denials"`
	ErrorRate    float64 `json:"error_rate"`
	DenialRate   float64 `json:"denial_rate"`
	ActiveAgents uint64  `json:"active_agents"`
	Servers      uint64  `json:"servers"`
	Tools        uint64  `json:"tools"`
}

// Totals counts calls by outcome and distinct agents/servers/tools.
func (s *Store) Totals(ctx context.Context, f Filter) (Totals, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	src, args, err := s.callsSource(ctx, "agent_id, server_name, tool_name, outcome", f, true)
	if err != nil {
		return Totals{}, err
	}
	q := "SELECT sum(c), sumIf(c, outcome IN ('error', 'tool_error')), sumIf(c, outcome = 'denied')," +
		" uniqExact(agent_id), uniqExactIf(server_name, server_name != ''), uniqExactIf(server_name, tool_name, tool_name != '') FROM " + src
	var t Totals
	if err := s.conn.QueryRow(ctx, q, args...).Scan(&t.Calls, &t.Errors, &t.Denials, &t.ActiveAgents, &t.Servers, &t.Tools); err != nil {
		return t, fmt.Errorf("cannot query call totals: %w", err)
	}
	if t.Calls > 0 {
		t.ErrorRate = float64(t.Errors) / float64(t.Calls)
		t.DenialRate = float64(t.Denials) / float64(t.Calls)
	}
	return t, nil
}

// Point is one time-series bucket.
type Point struct {
	Time    time.Time `json:"time"`
	Calls   uint64    `json:"calls"`
	Errors  uint64    `json:"errors"`
	Denials uint64    `json:"denials"`
}

// CallsOverTime buckets calls by outcome.
func (s *Store) CallsOverTime(ctx context.Context, f Filter) ([]Point, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	step := f.step()
	src, args, err := s.callsSource(ctx, "minute, outcome", f, step%3600 == 0)
	if err != nil {
		return nil, err
	}
	q := "SELECT toDateTime(intDiv(toUInt32(minute), ?) * ?) AS t, sum(c), sumIf(c, outcome IN ('error', 'tool_error')), sumIf(c, outcome = 'denied')" +
		" FROM " + src + " GROUP BY t ORDER BY t"
	rows, err := s.conn.Query(ctx, q, append([]any{step, step}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query calls over time: %w", err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var p Point
		if err := rows.Scan(&p.Time, &p.Calls, &p.Errors, &p.Denials); err != nil {
			return nil, fmt.Errorf("cannot scan calls over time: %w", err)
		}
		p.Time = p.Time.UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// AgentRow is one agent in the agents table.
type AgentRow struct {
	AgentID    string    `json:"agent_id"`
	AgentName  string    `json:"agent_name"`
	UserID     string    `json:"user_id"`
	ClientName string    `json:"client_name"`
	Calls      uint64    `json:"calls"`
	Errors     uint64    `json:"errors"`
	Denials    uint64    `json:"denials"`
	Servers    uint64    `json:"servers"`
	Tools      uint64    `json:"tools"`
	LastSeen   time.Time `json:"last_seen"`
	// Content is what content the agent's calls carry (AgentContent): only
	// in AgentsWithContent's rows.
	Content *Content `json:"content,omitempty"`
}

// Agents lists agents active in the range, busiest first, with their
// identity and last call; not the content (AgentsWithContent), which costs
// about as much again and which the pages load after the table. Stored rows
// without an agent id are one agent, NoAgentID.
func (s *Store) Agents(ctx context.Context, f Filter) ([]AgentRow, error) {
	return s.agents(ctx, f, false)
}

// AgentsWithContent is Agents with the content each agent's calls carry
// (the /agent-content resource).
func (s *Store) AgentsWithContent(ctx context.Context, f Filter) ([]AgentRow, error) {
	return s.agents(ctx, f, true)
}

func (s *Store) agents(ctx context.Context, f Filter, content bool) ([]AgentRow, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	// Every agent's newest events, read while the rollup is (AgentContent);
	// not for one agent (the agent page): its window is read on its own.
	var (
		recent    map[string]*agentEvents
		recentErr error
		wg        sync.WaitGroup
	)
	if content && f.Agent == "" {
		wg.Add(1)
		go func() { defer wg.Done(); recent, recentErr = s.agentEvents(ctx, f, nil, nil, f.recent()) }()
		defer wg.Wait()
	}
	src, args, err := s.callsSource(ctx, "minute, agent_id, server_name, tool_name, outcome", f, true)
	if err != nil {
		return nil, err
	}
	// Per (agent, server, tool) first, so distinct tools are a count().
	q := "SELECT agent_id, sum(n) AS calls, sum(e), sum(dn), uniqExact(server_name), count(), max(last) FROM" +
		" (SELECT agent_id, server_name, tool_name, sum(c) AS n, sumIf(c, outcome IN ('error', 'tool_error')) AS e, sumIf(c, outcome = 'denied') AS dn, max(minute) AS last" +
		" FROM " + src + " GROUP BY agent_id, server_name, tool_name)" +
		" GROUP BY agent_id ORDER BY calls DESC, agent_id LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(args, f.limit(500, 5000))...)
	if err != nil {
		return nil, fmt.Errorf("cannot query agents: %w", err)
	}
	defer rows.Close()
	var out []AgentRow
	var acts []agentActivity
	idx := map[string]int{}
	since := f.To
	for rows.Next() {
		var a AgentRow
		var last time.Time
		if err := rows.Scan(&a.AgentID, &a.Calls, &a.Errors, &a.Denials, &a.Servers, &a.Tools, &last); err != nil {
			return nil, fmt.Errorf("cannot scan agents: %w", err)
		}
		if last.Before(since) {
			since = last
		}
		a.AgentID = agentOut(a.AgentID)
		idx[a.AgentID] = len(out)
		out = append(out, a)
		acts = append(acts, agentActivity{ID: a.AgentID, Calls: a.Calls, Last: last})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read agents: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	// Identity columns, the exact last call and the content of the calls
	// are not in the rollup: one read of each agent's newest events gives
	// all three (AgentContent).
	if !content {
		return out, s.agentNames(ctx, f, out, idx, since)
	}
	wg.Wait()
	if recentErr != nil {
		return nil, recentErr
	}
	got, err := s.AgentContent(ctx, f, acts, recent)
	if err != nil {
		return nil, err
	}
	for i := range out {
		a := got[out[i].AgentID]
		out[i].AgentName, out[i].UserID, out[i].ClientName, out[i].LastSeen = a.name, a.user, a.client, a.last
		out[i].Content = &a.Content
	}
	return out, nil
}

// agentNames fills the identity columns and the exact last call, which are
// not in the rollup. Every listed agent called in its last active minute,
// so reading events from the earliest of those minutes (since) finds each
// agent's newest call (its max(ts) over the range) without reading the
// whole range.
func (s *Store) agentNames(ctx context.Context, f Filter, out []AgentRow, idx map[string]int, since time.Time) error {
	ff := f
	if since.After(ff.From) {
		ff.From = since
	}
	ew, eargs := ff.eventsWhere()
	// PREWHERE on ts: the window is small, so other columns are read only
	// for its granules. Only the listed agents: with a short list (top N)
	// the primary key skips the others' granules.
	ids := make([]string, len(out))
	for i, a := range out {
		ids[i] = a.AgentID
		if ids[i] == NoAgentID {
			ids[i] = ""
		}
	}
	q := "SELECT agent_id, any(agent_name), any(user_id), any(client_name), max(ts) FROM " + s.t("events") +
		" PREWHERE ts >= toDateTime(?) AND ts <= toDateTime(?) WHERE " + ew + " AND agent_id IN (SELECT arrayJoin(?)) GROUP BY agent_id"
	rows, err := s.conn.Query(ctx, q, append(append([]any{ff.from(), ff.to()}, eargs...), ids)...)
	if err != nil {
		return fmt.Errorf("cannot query agent names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name, user, client string
		var last time.Time
		if err := rows.Scan(&id, &name, &user, &client, &last); err != nil {
			return fmt.Errorf("cannot scan agent names: %w", err)
		}
		if i, ok := idx[agentOut(id)]; ok {
			out[i].AgentName, out[i].UserID, out[i].ClientName, out[i].LastSeen = name, user, client, last.UTC()
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read agent names: %w", err)
	}
	return nil
}

// ToolUse is calls per (server, tool).
type ToolUse struct {
	ServerName string `json:"server_name"`
	ToolName   string `json:"tool_name"`
	Calls      uint64 `json:"calls"`
	Errors     uint64 `json:"errors"`
	Denials    uint64 `json:"denials"`
	Agents     uint64 `json:"agents"`
}

// ToolUsage counts calls per server and tool, busiest first.
func (s *Store) ToolUsage(ctx context.Context, f Filter) ([]ToolUse, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	src, args, err := s.callsSource(ctx, "agent_id, server_name, tool_name, outcome", f, true)
	if err != nil {
		return nil, err
	}
	// Per (server, tool, agent) first, so distinct agents are a count().
	q := "SELECT server_name, tool_name, sum(n) AS calls, sum(e), sum(dn), count() FROM" +
		" (SELECT server_name, tool_name, agent_id, sum(c) AS n, sumIf(c, outcome IN ('error', 'tool_error')) AS e, sumIf(c, outcome = 'denied') AS dn" +
		" FROM " + src + " GROUP BY server_name, tool_name, agent_id)" +
		" GROUP BY server_name, tool_name ORDER BY calls DESC, server_name, tool_name LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(args, f.limit(1000, 10000))...)
	if err != nil {
		return nil, fmt.Errorf("cannot query tool usage: %w", err)
	}
	defer rows.Close()
	var out []ToolUse
	for rows.Next() {
		var t ToolUse
		if err := rows.Scan(&t.ServerName, &t.ToolName, &t.Calls, &t.Errors, &t.Denials, &t.Agents); err != nil {
			return nil, fmt.Errorf("cannot scan tool usage: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GraphNode and GraphEdge form the agent → server → tool graph.
type GraphNode struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	SubTitle string `json:"subTitle"`
	MainStat uint64 `json:"mainStat"`
	Errors   uint64 `json:"errors"`
	Kind     string `json:"kind"`
}

// GraphEdge links two nodes; MainStat is the number of calls.
type GraphEdge struct {
	ID       string `json:"id"`
	Source   string `json:"source"`
	Target   string `json:"target"`
	MainStat uint64 `json:"mainStat"`
}

// Graph is nodes and edges.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
}

// AgentGraph builds agent → server → tool from calls in the range.
func (s *Store) AgentGraph(ctx context.Context, f Filter) (Graph, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	src, args, err := s.callsSource(ctx, "agent_id, server_name, tool_name, outcome", f, true)
	if err != nil {
		return Graph{}, err
	}
	q := "SELECT agent_id, server_name, tool_name, sum(c) AS calls, sumIf(c, outcome != 'ok')" +
		" FROM " + src + " GROUP BY agent_id, server_name, tool_name ORDER BY calls DESC, agent_id, server_name, tool_name LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(args, f.limit(300, 2000))...)
	if err != nil {
		return Graph{}, fmt.Errorf("cannot query agent graph: %w", err)
	}
	defer rows.Close()
	nodes := map[string]*GraphNode{}
	edges := map[string]*GraphEdge{}
	node := func(id, title, sub, kind string) *GraphNode {
		n, ok := nodes[id]
		if !ok {
			n = &GraphNode{ID: id, Title: title, SubTitle: sub, Kind: kind}
			nodes[id] = n
		}
		return n
	}
	edge := func(src, dst string, calls uint64) {
		id := src + "->" + dst
		e, ok := edges[id]
		if !ok {
			e = &GraphEdge{ID: id, Source: src, Target: dst}
			edges[id] = e
		}
		e.MainStat += calls
	}
	for rows.Next() {
		var agent, server, tool string
		var calls, bad uint64
		if err := rows.Scan(&agent, &server, &tool, &calls, &bad); err != nil {
			return Graph{}, fmt.Errorf("cannot scan agent graph: %w", err)
		}
		agent = agentOut(agent)
		a := node("agent:"+agent, agent, "agent", "agent")
		sv := node("server:"+server, server, "server", "server")
		tl := node("tool:"+server+"/"+tool, tool, server, "tool")
		for _, n := range []*GraphNode{a, sv, tl} {
			n.MainStat += calls
			n.Errors += bad
		}
		edge(a.ID, sv.ID, calls)
		edge(sv.ID, tl.ID, calls)
	}
	if err := rows.Err(); err != nil {
		return Graph{}, fmt.Errorf("cannot read agent graph: %w", err)
	}
	g := Graph{Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	for _, e := range edges {
		g.Edges = append(g.Edges, *e)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	sort.Slice(g.Edges, func(i, j int) bool { return g.Edges[i].ID < g.Edges[j].ID })
	return g, nil
}

// Event is one stored tool call, arguments and result as stored (redacted).
type Event struct {
	EventID    string    `json:"event_id"`
	Time       time.Time `json:"ts"`
	TsNs       uint64    `json:"ts_ns"`
	DurationNs uint64    `json:"duration_ns"`
	Tenant     string    `json:"tenant"`
	AgentID    string    `json:"agent_id"`
	UserID     string    `json:"user_id"`
	SessionKey string    `json:"session_key"`
	Method     string    `json:"method"`
	ServerName string    `json:"server_name"`
	ToolName   string    `json:"tool_name"`
	Arguments  string    `json:"arguments"`
	Result     string    `json:"result"`
	Outcome    string    `json:"outcome"`
	ErrorType  string    `json:"error_type"`
	Tags       []string  `json:"tags"`
}

const eventCols = "event_id, ts, ts_ns, duration_ns, toString(tenant), agent_id, user_id, session_key, toString(method), toString(server_name), toString(tool_name), arguments, result, toString(outcome), toString(error_type), tags"

func scanEvents(rows driver.Rows) ([]Event, error) {
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.EventID, &e.Time, &e.TsNs, &e.DurationNs, &e.Tenant, &e.AgentID, &e.UserID, &e.SessionKey, &e.Method,
			&e.ServerName, &e.ToolName, &e.Arguments, &e.Result, &e.Outcome, &e.ErrorType, &e.Tags); err != nil {
			return nil, fmt.Errorf("cannot scan events: %w", err)
		}
		e.Time = e.Time.UTC()
		e.AgentID = agentOut(e.AgentID)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read events: %w", err)
	}
	return out, nil
}

// RecentEvents returns the newest calls in the range (deduplicated by event_id).
func (s *Store) RecentEvents(ctx context.Context, f Filter) ([]Event, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	w, args := f.eventsWhere()
	q := "SELECT " + eventCols + " FROM " + s.t("events") + " WHERE " + w +
		" ORDER BY ts DESC, ts_ns DESC, event_id LIMIT 1 BY event_id LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(args, f.limit(100, 1000))...)
	if err != nil {
		return nil, fmt.Errorf("cannot query events: %w", err)
	}
	return scanEvents(rows)
}

// SessionRow summarises one session.
type SessionRow struct {
	SessionKey string    `json:"session_key"`
	AgentID    string    `json:"agent_id"`
	UserID     string    `json:"user_id"`
	Calls      uint64    `json:"calls"`
	Failures   uint64    `json:"failures"`
	Redacted   uint64    `json:"redacted"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
}

// sessionWindows are the trailing windows Sessions tries before the whole
// range when picking the newest sessions.
var sessionWindows = []time.Duration{10 * time.Minute, time.Hour}

// Sessions lists sessions active in the range, newest first. It picks the
// sessions by their last call first, in a trailing window of the range
// that grows until it holds enough sessions (then no session outside it
// can be newer, so the pick is the same as over the whole range), and only
// then counts those sessions' calls over the whole range.
func (s *Store) Sessions(ctx context.Context, f Filter) ([]SessionRow, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	limit := f.limit(200, 2000)
	var keys []string
	for i := 0; ; i++ {
		wf := f
		if i < len(sessionWindows) && f.To.Add(-sessionWindows[i]).After(f.From) {
			wf.From = f.To.Add(-sessionWindows[i])
		} else {
			i = len(sessionWindows)
		}
		w, args := wf.eventsWhere()
		q := "SELECT session_key, max(ts) AS last FROM " + s.t("events") + " PREWHERE ts >= toDateTime(?) AND ts <= toDateTime(?) WHERE " + w +
			" AND session_key != '' GROUP BY session_key ORDER BY last DESC, session_key LIMIT ?"
		rows, err := s.conn.Query(ctx, q, append(append([]any{wf.from(), wf.to()}, args...), limit)...)
		if err != nil {
			return nil, fmt.Errorf("cannot query sessions: %w", err)
		}
		keys = keys[:0]
		for rows.Next() {
			var k string
			var last time.Time
			if err := rows.Scan(&k, &last); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cannot scan sessions: %w", err)
			}
			keys = append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("cannot read sessions: %w", err)
		}
		if len(keys) >= limit || i >= len(sessionWindows) {
			break
		}
	}
	out := []SessionRow{}
	if len(keys) == 0 {
		return out, nil
	}
	w, args := f.eventsWhere()
	// Calls, not observations: the observations of one call share its
	// call_id (event_id for rows written before it existed), and fastmcp's
	// duplicate client observation is not counted.
	q := "SELECT session_key, any(agent_id), any(user_id), uniqExactIf(" + callKey + ", " + counted + ")," +
		" uniqExactIf(" + callKey + ", " + counted + " AND outcome != 'ok')," +
		" uniqExactIf(" + callKey + ", " + counted + " AND arrayExists(x -> x LIKE 'secret:%', tags)), min(ts), max(ts) AS last FROM " + s.t("events") +
		" PREWHERE session_key IN (SELECT arrayJoin(?)) WHERE " + w + " GROUP BY session_key ORDER BY last DESC, session_key LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(append([]any{keys}, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query sessions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r SessionRow
		if err := rows.Scan(&r.SessionKey, &r.AgentID, &r.UserID, &r.Calls, &r.Failures, &r.Redacted, &r.FirstSeen, &r.LastSeen); err != nil {
			return nil, fmt.Errorf("cannot scan sessions: %w", err)
		}
		r.FirstSeen, r.LastSeen = r.FirstSeen.UTC(), r.LastSeen.UTC()
		r.AgentID = agentOut(r.AgentID)
		out = append(out, r)
	}
	return out, rows.Err()
}

// callKey is what identifies a call in events (schema 0016); counted
// excludes observations that another one of the same call already records.
const (
	callKey = "if(call_id = '', event_id, call_id)"
	counted = "NOT has(tags, 'duplicate_observation')"
)

// SessionEvents returns one session's calls in order (deduplicated).
func (s *Store) SessionEvents(ctx context.Context, f Filter, session string) ([]Event, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	w, args := f.eventsWhere()
	q := "SELECT " + eventCols + " FROM " + s.t("events") + " WHERE " + w + " AND session_key = ?" +
		" ORDER BY ts_ns, event_id LIMIT 1 BY event_id LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(args, session, f.limit(1000, 10000))...)
	if err != nil {
		return nil, fmt.Errorf("cannot query session events: %w", err)
	}
	return scanEvents(rows)
}

// EventsByID returns the given events (deduplicated), oldest first.
func (s *Store) EventsByID(ctx context.Context, f Filter, ids []string) ([]Event, error) {
	if len(ids) == 0 {
		return []Event{}, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var c cond
	c.add("ts >= toDateTime(?) AND ts <= toDateTime(?)", f.from(), f.to())
	c.tenant(f.Tenant, f.Tenants)
	c.eqAgent(f.Agent)
	c.add("has(?, event_id)", ids)
	q := "SELECT " + eventCols + " FROM " + s.t("events") + " WHERE " + c.String() +
		" ORDER BY ts_ns, event_id LIMIT 1 BY event_id LIMIT 1000"
	rows, err := s.conn.Query(ctx, q, c.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query events by id: %w", err)
	}
	return scanEvents(rows)
}

// Values returns the distinct non-empty values of col (a calls_per_minute
// column named by valueColumns, never user input) among the tools/call
// calls of f, sorted, at most 1000.
func (s *Store) Values(ctx context.Context, f Filter, col string) ([]string, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	src, args, err := s.callsSource(ctx, "minute, "+col, f, true)
	if err != nil {
		return nil, err
	}
	q := "SELECT DISTINCT " + col + " AS v FROM " + src + " WHERE v != '' ORDER BY v LIMIT 1000"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query %s values: %w", col, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
