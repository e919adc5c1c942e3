package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/data"
)

// The alert-friendly query types answer numeric time series in Grafana's
// data plane "multi" shape: one frame per series, a time field and one
// numeric field whose labels name the series. Grafana alerting's reduce
// and threshold expressions evaluate each labelled series on its own, so a
// rule fires per agent or per severity.
const (
	// QueryDenialRate is denied calls / calls per bucket, one series per
	// agent (label agent).
	QueryDenialRate = "denial_rate"
	// QueryNewIncidents is incidents first seen per bucket, one series per
	// severity (label severity), zero-filled so that "no new incident"
	// evaluates to 0, not to no data.
	QueryNewIncidents = "new_incidents"
)

// Severities are the incident severities (schema 0005), lowest first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// AgentRate is one bucket of one agent's calls.
type AgentRate struct {
	Time    time.Time
	Agent   string
	Calls   uint64
	Denials uint64
}

// DenialsByAgent counts calls and denied calls per agent and bucket, from
// the same exact sources as CallsOverTime.
func (s *Store) DenialsByAgent(ctx context.Context, f Filter) ([]AgentRate, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	step := f.step()
	src, args, err := s.callsSource(ctx, "minute, agent_id, outcome", f, step%3600 == 0)
	if err != nil {
		return nil, err
	}
	q := "SELECT toDateTime(intDiv(toUInt32(minute), ?) * ?) AS t, agent_id, sum(c), sumIf(c, outcome = 'denied')" +
		" FROM " + src + " GROUP BY t, agent_id ORDER BY agent_id, t"
	rows, err := s.conn.Query(ctx, q, append([]any{step, step}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("cannot query denials by agent: %w", err)
	}
	defer rows.Close()
	var out []AgentRate
	for rows.Next() {
		var r AgentRate
		if err := rows.Scan(&r.Time, &r.Agent, &r.Calls, &r.Denials); err != nil {
			return nil, fmt.Errorf("cannot scan denials by agent: %w", err)
		}
		if r.Agent == "" {
			r.Agent = NoAgentID
		}
		r.Time = r.Time.UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}

// NewIncidents counts incidents by the bucket of their first_seen and
// severity (current version, FINAL), within f's range and tenants.
func (s *Store) NewIncidents(ctx context.Context, f Filter, severity string) (map[string]map[int64]uint64, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	step := f.step()
	q := "SELECT toUInt32(intDiv(toUInt32(first_seen), ?) * ?) AS t, toString(severity) AS sev, count() FROM " + s.t("incidents") + " FINAL" +
		" WHERE first_seen >= toDateTime(?) AND first_seen <= toDateTime(?) AND (? = '' OR toString(severity) = ?)" +
		" AND (? = '' OR tenant = ?) AND (? = '' OR agent_id = ?)" + scopeAnd(f.Tenants) + " GROUP BY t, sev"
	args := append([]any{step, step, f.from(), f.to(), severity, severity, f.Tenant, f.Tenant, f.Agent, f.Agent}, scopeArgs(f.Tenants)...)
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query new incidents: %w", err)
	}
	defer rows.Close()
	out := map[string]map[int64]uint64{}
	for rows.Next() {
		var t uint32
		var sev string
		var n uint64
		if err := rows.Scan(&t, &sev, &n); err != nil {
			return nil, fmt.Errorf("cannot scan new incidents: %w", err)
		}
		if out[sev] == nil {
			out[sev] = map[int64]uint64{}
		}
		out[sev][int64(t)] = n
	}
	return out, rows.Err()
}

// denialRateFrames is one frame per agent: time, denial_rate{agent=…}.
func denialRateFrames(rs []AgentRate) data.Frames {
	var frames data.Frames
	var cur *data.Frame
	for _, r := range rs {
		if cur == nil || cur.Fields[1].Labels["agent"] != r.Agent {
			v := data.NewField("denial_rate", data.Labels{"agent": r.Agent}, []float64{})
			v.Config = &data.FieldConfig{DisplayNameFromDS: r.Agent, Unit: "percentunit"}
			cur = data.NewFrame("denial_rate", data.NewField("time", nil, []time.Time{}), v)
			cur.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
			frames = append(frames, cur)
		}
		rate := 0.0
		if r.Calls > 0 {
			rate = float64(r.Denials) / float64(r.Calls)
		}
		cur.AppendRow(r.Time, rate)
	}
	return frames
}

// newIncidentFrames is one zero-filled frame per severity (the one asked
// for, else every severity): time, new_incidents{severity=…}.
func newIncidentFrames(counts map[string]map[int64]uint64, f Filter, severity string) data.Frames {
	sevs := Severities
	if severity != "" {
		sevs = []string{severity}
	}
	step := f.step()
	first := f.from() / step * step
	var frames data.Frames
	for _, sev := range sevs {
		v := data.NewField("new_incidents", data.Labels{"severity": sev}, []float64{})
		v.Config = &data.FieldConfig{DisplayNameFromDS: sev, Unit: "short"}
		fr := data.NewFrame("new_incidents", data.NewField("time", nil, []time.Time{}), v)
		fr.Meta = &data.FrameMeta{Type: data.FrameTypeTimeSeriesMulti, TypeVersion: data.FrameTypeVersion{0, 1}}
		for t := first; t <= f.to(); t += step {
			fr.AppendRow(time.Unix(t, 0).UTC(), float64(counts[sev][t]))
		}
		frames = append(frames, fr)
	}
	return frames
}
