package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	jsoniter "github.com/json-iterator/go"
)

// Query types of the data source.
const (
	QueryCallsOverTime = "calls_over_time"
	QueryTopAgents     = "top_agents"
	QueryTopTools      = "top_tools"
	QueryAgentGraph    = "agent_graph"
	QueryIncidents     = "incidents"
	QueryFindings      = "findings"
	QueryToolChanges   = "tool_changes"
	// QueryValues lists the distinct values of one dimension (field: tenant,
	// agent, server or tool; default agent) among the tool calls in the time
	// range and the reader's tenants: the app's and dashboards' variables.
	QueryValues = "values"
)

// valueColumns maps a values query's field to its column.
var valueColumns = map[string]string{"tenant": "tenant", "agent": "agent_id", "server": "server_name", "tool": "tool_name"}

// QueryTypes lists every supported query type.
var QueryTypes = []string{QueryCallsOverTime, QueryTopAgents, QueryTopTools, QueryAgentGraph, QueryIncidents, QueryFindings, QueryToolChanges,
	QueryDenialRate, QueryNewIncidents, QueryValues,
	QueryAgents, QuerySessions, QueryCalls, QueryTools, QueryToolDefinitions,
	QueryRules, QueryRuleHits, QueryBlastRadius}

// QueryModel is a panel query's JSON. Template variables are interpolated by
// the frontend before the query reaches the backend; "" and "$__all" mean all.
type QueryModel struct {
	QueryType string `json:"queryType"`
	Tenant    string `json:"tenant"`
	Agent     string `json:"agent"`
	Server    string `json:"server"`
	Tool      string `json:"tool"`
	Status    string `json:"status"`
	Severity  string `json:"severity"`
	Rule      string `json:"rule"`
	Limit     int    `json:"limit"`
	Field     string `json:"field"` // values: which dimension
	// calls: one session's calls in order; blast_radius: the subject
	// besides a tool (server and tool name that)
	Session        string `json:"session"`
	DefinitionHash string `json:"definition_hash"`
	Fingerprint    string `json:"fingerprint"`
	Incident       string `json:"incident"`
}

func all(v string) string {
	if v == "$__all" || v == "All" || v == "*" {
		return ""
	}
	return v
}

// QueryData answers each query separately: one response per RefID, an
// error in one query does not fail the others.
func (a *App) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	// The queries are independent: run up to 4 at once (ClickHouse uses
	// both cores for one query only part of the time).
	resp := backend.NewQueryDataResponse()
	scope := a.settings.TenantAccess.Scope(req.PluginContext.OrgID, req.PluginContext.User)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, q := range req.Queries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := a.query(ctx, q, scope)
			mu.Lock()
			resp.Responses[q.RefID] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return resp, nil
}

// query answers one query within scope, the user's tenants (nil = all).
func (a *App) query(ctx context.Context, q backend.DataQuery, scope []string) backend.DataResponse {
	var m QueryModel
	if len(q.JSON) > 0 {
		if err := json.Unmarshal(q.JSON, &m); err != nil {
			return backend.ErrDataResponse(backend.StatusBadRequest, "cannot parse query: "+err.Error())
		}
	}
	if m.QueryType == "" {
		m.QueryType = q.QueryType
	}
	f := Filter{From: q.TimeRange.From.UTC(), To: q.TimeRange.To.UTC(), Tenant: all(m.Tenant), Tenants: scope,
		Agent: all(m.Agent), Server: all(m.Server), Tool: all(m.Tool), Limit: m.Limit}
	if f.Tenant != "" && !allows(scope, f.Tenant) {
		return backend.ErrDataResponse(backend.StatusForbidden, fmt.Sprintf("you may not read tenant %q", f.Tenant))
	}
	if q.Interval >= time.Minute {
		f.Step = int64(q.Interval / time.Second)
	}
	if !f.From.Before(f.To) {
		return backend.ErrDataResponse(backend.StatusBadRequest, "invalid time range")
	}
	// Query types answered by their own files (datasource_pages.go,
	// datasource_inventory.go), then the ones below.
	frames, ok, err := a.pageFrames(ctx, m, f)
	if !ok {
		frames, ok, err = a.inventoryFrames(ctx, m, f)
	}
	if !ok {
		frames, err = a.frames(ctx, m, f)
	}
	if err != nil {
		return backend.ErrDataResponse(statusOf(err), err.Error())
	}
	return backend.DataResponse{Frames: frames}
}

func short(f *data.Field, name string) *data.Field {
	f.Config = &data.FieldConfig{DisplayName: name, Unit: "short"}
	return f
}

func (a *App) frames(ctx context.Context, m QueryModel, f Filter) (data.Frames, error) {
	s := a.store
	switch m.QueryType {
	case QueryCallsOverTime:
		pts, err := s.CallsOverTime(ctx, f)
		if err != nil {
			return nil, err
		}
		t := make([]time.Time, len(pts))
		calls, errs, den := make([]uint64, len(pts)), make([]uint64, len(pts)), make([]uint64, len(pts))
		rate := make([]float64, len(pts))
		for i, p := range pts {
			t[i], calls[i], errs[i], den[i] = p.Time.UTC(), p.Calls, p.Errors, p.Denials
			if p.Calls > 0 {
				rate[i] = float64(p.Errors+p.Denials) / float64(p.Calls)
			}
		}
		rf := data.NewField("failure_rate", nil, rate)
		rf.Config = &data.FieldConfig{DisplayName: "Error + denial rate", Unit: "percentunit"}
		fr := data.NewFrame("calls", data.NewField("time", nil, t),
			short(data.NewField("calls", nil, calls), "Calls"), short(data.NewField("errors", nil, errs), "Errors"),
			short(data.NewField("denials", nil, den), "Denials"), rf)
		fr.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide}
		return data.Frames{fr}, nil
	case QueryDenialRate:
		rs, err := s.DenialsByAgent(ctx, f)
		if err != nil {
			return nil, err
		}
		return denialRateFrames(rs), nil
	case QueryNewIncidents:
		sev := all(m.Severity)
		if sev != "" && !slices.Contains(Severities, sev) {
			// Like the incidents query's filter: no incident has it.
			return data.Frames{}, nil
		}
		counts, err := s.NewIncidents(ctx, f, sev)
		if err != nil {
			return nil, err
		}
		return newIncidentFrames(counts, f, sev), nil
	case QueryTopAgents:
		if f.Limit == 0 {
			f.Limit = 10
		}
		rows, err := s.Agents(ctx, f)
		if err != nil {
			return nil, err
		}
		fr := data.NewFrame("top_agents",
			data.NewField("agent_id", nil, []string{}), data.NewField("agent_name", nil, []string{}), data.NewField("user_id", nil, []string{}),
			short(data.NewField("calls", nil, []uint64{}), "Calls"), short(data.NewField("errors", nil, []uint64{}), "Errors"),
			short(data.NewField("denials", nil, []uint64{}), "Denials"), short(data.NewField("tools", nil, []uint64{}), "Tools"),
			data.NewField("last_seen", nil, []time.Time{}))
		for _, r := range rows {
			fr.AppendRow(r.AgentID, r.AgentName, r.UserID, r.Calls, r.Errors, r.Denials, r.Tools, r.LastSeen)
		}
		return data.Frames{fr}, nil
	case QueryTopTools:
		if f.Limit == 0 {
			f.Limit = 10
		}
		rows, err := s.ToolUsage(ctx, f)
		if err != nil {
			return nil, err
		}
		fr := data.NewFrame("top_tools",
			data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}),
			short(data.NewField("calls", nil, []uint64{}), "Calls"), short(data.NewField("errors", nil, []uint64{}), "Errors"),
			short(data.NewField("denials", nil, []uint64{}), "Denials"), short(data.NewField("agents", nil, []uint64{}), "Agents"))
		for _, r := range rows {
			fr.AppendRow(r.ServerName, r.ToolName, r.Calls, r.Errors, r.Denials, r.Agents)
		}
		return data.Frames{fr}, nil
	case QueryAgentGraph:
		g, err := s.AgentGraph(ctx, f)
		if err != nil {
			return nil, err
		}
		return GraphFrames(g), nil
	case QueryIncidents:
		incs, err := s.Incidents(ctx, IncidentFilter{Status: all(m.Status), Severity: all(m.Severity), RuleID: all(m.Rule), Tenant: f.Tenant, Tenants: f.Tenants, Agent: f.Agent, Since: f.From, Limit: m.Limit})
		if err != nil {
			return nil, err
		}
		fr := data.NewFrame("incidents",
			data.NewField("incident_id", nil, []string{}), data.NewField("title", nil, []string{}), data.NewField("status", nil, []string{}),
			data.NewField("severity", nil, []string{}), data.NewField("rule_id", nil, []string{}), data.NewField("agent_id", nil, []string{}),
			short(data.NewField("finding_count", nil, []uint32{}), "Findings"), data.NewField("first_seen", nil, []time.Time{}),
			data.NewField("last_seen", nil, []time.Time{}), data.NewField("assignee", nil, []string{}))
		for _, i := range incs {
			fr.AppendRow(i.IncidentID, i.Title, i.Status, i.Severity, i.RuleID, i.AgentID, i.FindingCount, i.FirstSeen, i.LastSeen, i.Assignee)
		}
		return data.Frames{fr}, nil
	case QueryFindings:
		fs, err := s.Findings(ctx, FindingFilter{From: f.From, To: f.To, Rule: all(m.Rule), Tenant: f.Tenant, Tenants: f.Tenants, Limit: m.Limit})
		if err != nil {
			return nil, err
		}
		fr := data.NewFrame("findings",
			data.NewField("ts", nil, []time.Time{}), data.NewField("rule_id", nil, []string{}), data.NewField("severity", nil, []string{}),
			data.NewField("summary", nil, []string{}), data.NewField("agent_id", nil, []string{}), data.NewField("session_key", nil, []string{}),
			data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}), data.NewField("incident_id", nil, []string{}))
		for _, x := range fs {
			if f.Agent != "" && x.AgentID != f.Agent {
				continue
			}
			fr.AppendRow(x.Time, x.RuleID, x.Severity, x.Summary, x.AgentID, x.SessionKey, x.ServerName, x.ToolName, x.IncidentID)
		}
		return data.Frames{fr}, nil
	case QueryValues:
		field := m.Field
		if field == "" {
			field = "agent"
		}
		col, ok := valueColumns[field]
		if !ok {
			return nil, fmt.Errorf("unknown values field %q (want tenant, agent, server or tool)", field)
		}
		vals, err := s.Values(ctx, f, col)
		if err != nil {
			return nil, err
		}
		return data.Frames{data.NewFrame(field, data.NewField("value", nil, vals))}, nil
	case QueryToolChanges:
		defs, err := s.ToolDefinitions(ctx, Filter{From: f.From, To: f.To, Tenant: f.Tenant, Tenants: f.Tenants, Limit: f.Limit})
		if err != nil {
			return nil, err
		}
		fr := data.NewFrame("tool_changes",
			data.NewField("first_seen", nil, []time.Time{}), data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}),
			data.NewField("definition_hash", nil, []string{}), data.NewField("description", nil, []string{}), data.NewField("last_seen", nil, []time.Time{}))
		for _, d := range defs {
			if f.Server != "" && d.ServerName != f.Server {
				continue
			}
			fr.AppendRow(d.FirstSeen, d.ServerName, d.ToolName, d.Hash, d.Description, d.LastSeen)
		}
		return data.Frames{fr}, nil
	}
	return nil, fmt.Errorf("unknown query type %q (want one of %v)", m.QueryType, QueryTypes)
}

// GraphFrames returns the node graph panel's nodes and edges frames (field
// names id/title/subTitle/mainStat/secondaryStat and id/source/target/mainStat).
func GraphFrames(g Graph) data.Frames {
	nodes := data.NewFrame("nodes",
		data.NewField("id", nil, []string{}), data.NewField("title", nil, []string{}), data.NewField("subTitle", nil, []string{}),
		short(data.NewField("mainStat", nil, []uint64{}), "calls"), short(data.NewField("secondaryStat", nil, []uint64{}), "failures"))
	for _, n := range g.Nodes {
		nodes.AppendRow(n.ID, n.Title, n.SubTitle, n.MainStat, n.Errors)
	}
	nodes.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	edges := data.NewFrame("edges",
		data.NewField("id", nil, []string{}), data.NewField("source", nil, []string{}), data.NewField("target", nil, []string{}),
		short(data.NewField("mainStat", nil, []uint64{}), "calls"))
	for _, e := range g.Edges {
		edges.AppendRow(e.ID, e.Source, e.Target, e.MainStat)
	}
	edges.Meta = &data.FrameMeta{PreferredVisualization: data.VisTypeNodeGraph}
	return data.Frames{nodes, edges}
}

// queryRequest is what the frontend data source posts to /query: Grafana's
// /api/ds/query shape (from/to in epoch ms as strings or numbers).
type queryRequest struct {
	From    json.Number       `json:"from"`
	To      json.Number       `json:"to"`
	Queries []json.RawMessage `json:"queries"`
}

// handleQuery runs data source queries for the frontend data source (which
// has no backend of its own and forwards to the app) and answers in the
// /api/ds/query JSON format.
func (a *App) handleQuery(w http.ResponseWriter, r *http.Request) {
	var req queryRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("cannot decode query request: %w", err))
		return
	}
	from, err1 := req.From.Int64()
	to, err2 := req.To.Int64()
	if err1 != nil || err2 != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("from and to must be epoch milliseconds"))
		return
	}
	qdr := &backend.QueryDataRequest{PluginContext: backend.PluginConfigFromContext(r.Context())}
	for _, raw := range req.Queries {
		var head struct {
			RefID         string `json:"refId"`
			QueryType     string `json:"queryType"`
			IntervalMs    int64  `json:"intervalMs"`
			MaxDataPoints int64  `json:"maxDataPoints"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("cannot decode query: %w", err))
			return
		}
		qdr.Queries = append(qdr.Queries, backend.DataQuery{
			RefID: head.RefID, QueryType: head.QueryType, MaxDataPoints: head.MaxDataPoints,
			Interval:  time.Duration(head.IntervalMs) * time.Millisecond,
			TimeRange: backend.TimeRange{From: time.UnixMilli(from).UTC(), To: time.UnixMilli(to).UTC()},
			JSON:      raw,
		})
	}
	resp, err := a.QueryData(r.Context(), qdr)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	b, err := jsoniter.ConfigCompatibleWithStandardLibrary.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("cannot encode query response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
