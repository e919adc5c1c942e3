package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Query types behind the app's Agents, Sessions and Tools scenes: the rows
// the /agents, /sessions, /sessions/{key}, /tools and /tools/definitions
// resources give, as frames for native panels (same store functions, same
// tenant scoping as the other query types).
const (
	// QueryAgents is the agents table (Store.Agents): identity, counts,
	// servers and tools per agent, busiest first.
	QueryAgents = "agents"
	// QuerySessions is the sessions table (Store.Sessions), newest first.
	QuerySessions = "sessions"
	// QueryCalls is tool calls as stored (arguments and results redacted):
	// one session's calls in order when the query names a session
	// (Store.SessionEvents), else the newest calls of the range
	// (Store.RecentEvents, newest first).
	QueryCalls = "calls"
	// QueryTools is the tool inventory (Store.Tools) with calls in the range.
	QueryTools = "tools"
	// QueryToolDefinitions is one tool's definition history, oldest first,
	// each row with its diff against the one before (Store.ToolDefinitions
	// with server and tool); without both, the definitions first seen in
	// the range of tools that changed.
	QueryToolDefinitions = "tool_definitions"
)

// inventoryFrames answers the query types of this file; ok is false for others.
func (a *App) inventoryFrames(ctx context.Context, m QueryModel, f Filter) (frames data.Frames, ok bool, err error) {
	s := a.store
	switch m.QueryType {
	case QueryAgents:
		rows, err := s.Agents(ctx, f)
		if err != nil {
			return nil, true, err
		}
		fr := data.NewFrame("agents",
			data.NewField("agent_id", nil, []string{}), data.NewField("agent_name", nil, []string{}), data.NewField("user_id", nil, []string{}),
			data.NewField("client_name", nil, []string{}), short(data.NewField("calls", nil, []uint64{}), "Calls"),
			short(data.NewField("errors", nil, []uint64{}), "Errors"), short(data.NewField("denials", nil, []uint64{}), "Denials"),
			short(data.NewField("servers", nil, []uint64{}), "Servers"), short(data.NewField("tools", nil, []uint64{}), "Tools"),
			data.NewField("last_seen", nil, []time.Time{}))
		for _, r := range rows {
			fr.AppendRow(r.AgentID, r.AgentName, r.UserID, r.ClientName, r.Calls, r.Errors, r.Denials, r.Servers, r.Tools, r.LastSeen)
		}
		return data.Frames{fr}, true, nil
	case QuerySessions:
		rows, err := s.Sessions(ctx, f)
		if err != nil {
			return nil, true, err
		}
		fr := data.NewFrame("sessions",
			data.NewField("session_key", nil, []string{}), data.NewField("agent_id", nil, []string{}), data.NewField("user_id", nil, []string{}),
			short(data.NewField("calls", nil, []uint64{}), "Calls"), short(data.NewField("failures", nil, []uint64{}), "Failed"),
			short(data.NewField("redacted", nil, []uint64{}), "With redactions"),
			data.NewField("first_seen", nil, []time.Time{}), data.NewField("last_seen", nil, []time.Time{}))
		for _, r := range rows {
			fr.AppendRow(r.SessionKey, r.AgentID, r.UserID, r.Calls, r.Failures, r.Redacted, r.FirstSeen, r.LastSeen)
		}
		return data.Frames{fr}, true, nil
	case QueryCalls:
		var evs []Event
		if m.Session != "" {
			evs, err = s.SessionEvents(ctx, f, m.Session)
		} else {
			evs, err = s.RecentEvents(ctx, f)
		}
		if err != nil {
			return nil, true, err
		}
		return data.Frames{callsFrame(evs)}, true, nil
	case QueryTools:
		rows, err := s.Tools(ctx, f)
		if err != nil {
			return nil, true, err
		}
		fr := data.NewFrame("tools",
			data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}), data.NewField("description", nil, []string{}),
			short(data.NewField("versions", nil, []uint64{}), "Versions"), short(data.NewField("calls", nil, []uint64{}), "Calls"),
			data.NewField("first_seen", nil, []time.Time{}), data.NewField("last_changed", nil, []time.Time{}),
			data.NewField("definition_hash", nil, []string{}))
		for _, r := range rows {
			// The inventory is narrowed by server in the store; by tool here.
			if f.Tool != "" && r.ToolName != f.Tool {
				continue
			}
			fr.AppendRow(r.ServerName, r.ToolName, r.Description, r.Versions, r.Calls, r.FirstSeen, r.LastChanged, r.CurrentHash)
		}
		return data.Frames{fr}, true, nil
	case QueryToolDefinitions:
		defs, err := s.ToolDefinitions(ctx, f)
		if err != nil {
			return nil, true, err
		}
		fr, err := definitionsFrame(defs)
		return data.Frames{fr}, true, err
	}
	return nil, false, nil
}

// callsFrame: one row per call, in the order given; tags joined by ", ".
func callsFrame(evs []Event) *data.Frame {
	dur := data.NewField("duration_ms", nil, []float64{})
	dur.Config = &data.FieldConfig{DisplayName: "Duration", Unit: "ms"}
	fr := data.NewFrame("calls",
		data.NewField("ts", nil, []time.Time{}), data.NewField("agent_id", nil, []string{}), data.NewField("user_id", nil, []string{}),
		data.NewField("session_key", nil, []string{}), data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}),
		data.NewField("outcome", nil, []string{}), data.NewField("error_type", nil, []string{}), dur,
		data.NewField("arguments", nil, []string{}), data.NewField("result", nil, []string{}), data.NewField("tags", nil, []string{}),
		data.NewField("event_id", nil, []string{}), data.NewField("ts_ns", nil, []uint64{}))
	for _, e := range evs {
		fr.AppendRow(e.Time, e.AgentID, e.UserID, e.SessionKey, e.ServerName, e.ToolName, e.Outcome, e.ErrorType,
			float64(e.DurationNs)/1e6, e.Arguments, e.Result, strings.Join(e.Tags, ", "), e.EventID, e.TsNs)
	}
	return fr
}

// definitionsFrame: one row per definition version; facts and diff as JSON
// ("" when not recorded), for the diff view to read back.
func definitionsFrame(defs []ToolDefinition) (*data.Frame, error) {
	fr := data.NewFrame("tool_definitions",
		data.NewField("first_seen", nil, []time.Time{}), data.NewField("last_seen", nil, []time.Time{}),
		data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}),
		data.NewField("definition_hash", nil, []string{}), data.NewField("server_version", nil, []string{}),
		data.NewField("description", nil, []string{}), data.NewField("input_schema", nil, []string{}),
		data.NewField("annotations", nil, []string{}), data.NewField("diff", nil, []string{}))
	for _, d := range defs {
		diff := ""
		if d.Diff != nil {
			b, err := json.Marshal(d.Diff)
			if err != nil {
				return nil, fmt.Errorf("cannot encode definition diff: %w", err)
			}
			diff = string(b)
		}
		fr.AppendRow(d.FirstSeen, d.LastSeen, d.ServerName, d.ToolName, d.Hash, d.ServerVersion, d.Description, d.InputSchema, d.Annotations, diff)
	}
	return fr, nil
}
