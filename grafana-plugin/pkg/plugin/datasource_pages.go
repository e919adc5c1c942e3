package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// Query types behind the app's Detections and Blast radius scenes: data
// only resource endpoints gave before, as frames for native panels.
const (
	// QueryRules is the Detections table: findings and incidents per rule
	// in the range (Store.DetectionHits, as GET /detections).
	QueryRules = "rules"
	// QueryRuleHits is findings per rule over time: one zero-filled frame
	// per rule (label rule), or only the rule the query names.
	QueryRuleHits = "rule_hits"
	// QueryBlastRadius is everything that touched one subject
	// (Store.BlastRadius, as GET /blast-radius): the frames blast_agents,
	// blast_sessions, blast_series (time series) and blast_calls. The
	// query's server and tool name the subject (a tool), as the endpoint's.
	QueryBlastRadius = "blast_radius"
)

// queryError is an error with the status its query's response carries.
type queryError struct {
	status backend.Status
	err    error
}

func (e queryError) Error() string { return e.err.Error() }
func (e queryError) Unwrap() error { return e.err }

// statusOf is the response status of a frames error.
func statusOf(err error) backend.Status {
	var qe queryError
	if errors.As(err, &qe) {
		return qe.status
	}
	return backend.StatusInternal
}

// pageFrames answers the query types of this file; ok is false for others.
func (a *App) pageFrames(ctx context.Context, m QueryModel, f Filter) (frames data.Frames, ok bool, err error) {
	switch m.QueryType {
	case QueryRules:
		hits, _, err := a.store.DetectionHits(ctx, f)
		if err != nil {
			return nil, true, err
		}
		fr := data.NewFrame("rules",
			data.NewField("rule_id", nil, []string{}), data.NewField("rule_title", nil, []string{}), data.NewField("severity", nil, []string{}),
			short(data.NewField("hits", nil, []uint64{}), "Findings"), short(data.NewField("incidents", nil, []uint64{}), "Incidents"),
			data.NewField("last_hit", nil, []time.Time{}))
		rule := all(m.Rule)
		for _, r := range hits {
			if rule == "" || r.RuleID == rule {
				fr.AppendRow(r.RuleID, r.RuleTitle, r.Severity, r.Hits, r.Incidents, r.LastHit)
			}
		}
		return data.Frames{fr}, true, nil
	case QueryRuleHits:
		hits, series, err := a.store.DetectionHits(ctx, f)
		if err != nil {
			return nil, true, err
		}
		return ruleHitFrames(hits, series, f, all(m.Rule)), true, nil
	case QueryBlastRadius:
		subj := BlastSubject{Server: all(m.Server), Tool: all(m.Tool), DefinitionHash: m.DefinitionHash,
			Fingerprint: m.Fingerprint, Session: m.Session, Incident: m.Incident}
		f.Server, f.Tool = "", "" // they name the subject here
		b, err := a.store.BlastRadius(ctx, f, subj)
		switch {
		case errors.Is(err, ErrBadSubject):
			return nil, true, queryError{backend.StatusBadRequest, err}
		case errors.Is(err, ErrNoDefinition):
			return nil, true, queryError{backend.StatusNotFound, err}
		case err != nil:
			return nil, true, err
		}
		return blastFrames(b, f), true, nil
	}
	return nil, false, nil
}

// ruleHitFrames is one zero-filled frame per rule with findings in the
// range (or only rule): time, hits{rule=…}.
func ruleHitFrames(hits []RuleHits, series []RuleHitsPoint, f Filter, rule string) data.Frames {
	counts := map[string]map[int64]uint64{}
	for _, p := range series {
		if counts[p.RuleID] == nil {
			counts[p.RuleID] = map[int64]uint64{}
		}
		counts[p.RuleID][p.Time.Unix()] = p.Hits
	}
	step := f.step()
	first := f.from() / step * step
	frames := data.Frames{}
	for _, r := range hits {
		if rule != "" && r.RuleID != rule {
			continue
		}
		v := data.NewField("hits", data.Labels{"rule": r.RuleID}, []uint64{})
		v.Config = &data.FieldConfig{DisplayNameFromDS: r.RuleID, Unit: "short"}
		fr := data.NewFrame("rule_hits", data.NewField("time", nil, []time.Time{}), v)
		fr.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
		for t := first; t <= f.to(); t += step {
			fr.AppendRow(time.Unix(t, 0).UTC(), counts[r.RuleID][t])
		}
		frames = append(frames, fr)
	}
	return frames
}

// blastFrames turns a blast radius into the frames named in
// QueryBlastRadius; the series is zero-filled over the range searched. A
// truncated answer says so in a notice on the agents and sessions frames.
func blastFrames(b BlastRadius, f Filter) data.Frames {
	agents := data.NewFrame("blast_agents",
		data.NewField("agent_id", nil, []string{}), short(data.NewField("calls", nil, []uint64{}), "Requests"),
		short(data.NewField("sessions", nil, []uint64{}), "Sessions"), data.NewField("first_seen", nil, []time.Time{}),
		data.NewField("last_seen", nil, []time.Time{}))
	for _, x := range b.Agents {
		agents.AppendRow(x.AgentID, x.Calls, x.Sessions, x.FirstSeen, x.LastSeen)
	}
	sessions := data.NewFrame("blast_sessions",
		data.NewField("session_key", nil, []string{}), data.NewField("agent_id", nil, []string{}),
		short(data.NewField("calls", nil, []uint64{}), "Requests"), data.NewField("first_seen", nil, []time.Time{}),
		data.NewField("last_seen", nil, []time.Time{}))
	for _, x := range b.Sessions {
		sessions.AppendRow(x.SessionKey, x.AgentID, x.Calls, x.FirstSeen, x.LastSeen)
	}
	if b.Truncated {
		n := data.Notice{Severity: data.NoticeSeverityWarning, Text: fmt.Sprintf("more than %d agents or sessions: the most active agents and the newest sessions are listed", blastListMax)}
		agents.Meta = &data.FrameMeta{Notices: []data.Notice{n}}
		sessions.Meta = &data.FrameMeta{Notices: []data.Notice{n}}
	}

	byT := map[int64]BlastBucket{}
	for _, p := range b.Series {
		byT[p.Time.Unix()] = p
	}
	series := data.NewFrame("blast_series", data.NewField("time", nil, []time.Time{}),
		short(data.NewField("calls", nil, []uint64{}), "Requests"), short(data.NewField("agents", nil, []uint64{}), "Agents"))
	series.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesWide}
	if b.From.Before(b.To) {
		step := Filter{From: b.From, To: b.To, Step: f.Step}.step()
		for t := b.From.Unix() / step * step; t <= b.To.Unix(); t += step {
			p := byT[t]
			series.AppendRow(time.Unix(t, 0).UTC(), p.Calls, p.Agents)
		}
	}

	calls := data.NewFrame("blast_calls",
		data.NewField("ts", nil, []time.Time{}), data.NewField("agent_id", nil, []string{}), data.NewField("session_key", nil, []string{}),
		data.NewField("method", nil, []string{}), data.NewField("server_name", nil, []string{}), data.NewField("tool_name", nil, []string{}),
		data.NewField("outcome", nil, []string{}), data.NewField("arguments", nil, []string{}), data.NewField("result", nil, []string{}),
		data.NewField("event_id", nil, []string{}))
	for _, e := range b.Calls {
		calls.AppendRow(e.Time, e.AgentID, e.SessionKey, e.Method, e.ServerName, e.ToolName, e.Outcome, e.Arguments, e.Result, e.EventID)
	}
	// The newest calls only: more_calls says how many more there are ("newest N of M").
	calls.Meta = &data.FrameMeta{Custom: map[string]any{"more_calls": b.MoreCalls}}
	return data.Frames{agents, sessions, series, calls}
}
