package plugin

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// OverviewData is everything the Overview page shows from the rollup.
type OverviewData struct {
	Totals   Totals
	Series   []Point
	TopTools []ToolUse
}

// Overview reads the calls (callsSource: sealed counts plus merged states
// for unsealed minutes) once per (bucket, server, tool, outcome); totals,
// the time series and the per-tool counts are all derived from that pass.
// Distinct agents per tool and overall come from one more pass.
func (s *Store) Overview(ctx context.Context, f Filter, topN int) (OverviewData, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	step := f.step()
	src, args, err := s.callsSource(ctx, "minute, server_name, tool_name, outcome", f, step%3600 == 0)
	if err != nil {
		return OverviewData{}, err
	}
	q := "SELECT toDateTime(intDiv(toUInt32(minute), ?) * ?) AS t, server_name, tool_name, toString(outcome) AS o, sum(c)" +
		" FROM " + src + " GROUP BY t, server_name, tool_name, o ORDER BY t"
	rows, err := s.conn.Query(ctx, q, append([]any{step, step}, args...)...)
	if err != nil {
		return OverviewData{}, fmt.Errorf("cannot query overview: %w", err)
	}
	defer rows.Close()
	var d OverviewData
	series := map[int64]*Point{}
	tools := map[[2]string]*ToolUse{}
	servers := map[string]bool{}
	for rows.Next() {
		var t time.Time
		var server, tool, o string
		var n uint64
		if err := rows.Scan(&t, &server, &tool, &o, &n); err != nil {
			return d, fmt.Errorf("cannot scan overview: %w", err)
		}
		p := series[t.Unix()]
		if p == nil {
			p = &Point{Time: t.UTC()}
			series[t.Unix()] = p
		}
		k := [2]string{server, tool}
		tu := tools[k]
		if tu == nil {
			tu = &ToolUse{ServerName: server, ToolName: tool}
			tools[k] = tu
		}
		if server != "" {
			servers[server] = true
		}
		p.Calls += n
		tu.Calls += n
		d.Totals.Calls += n
		switch o {
		case "error", "tool_error":
			p.Errors += n
			tu.Errors += n
			d.Totals.Errors += n
		case "denied":
			p.Denials += n
			tu.Denials += n
			d.Totals.Denials += n
		}
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("cannot read overview: %w", err)
	}
	if d.Totals.Calls > 0 {
		d.Totals.ErrorRate = float64(d.Totals.Errors) / float64(d.Totals.Calls)
		d.Totals.DenialRate = float64(d.Totals.Denials) / float64(d.Totals.Calls)
	}
	d.Totals.Servers = uint64(len(servers))
	for k := range tools {
		if k[1] != "" {
			d.Totals.Tools++
		}
	}
	d.Series = make([]Point, 0, len(series))
	for _, p := range series {
		d.Series = append(d.Series, *p)
	}
	sort.Slice(d.Series, func(i, j int) bool { return d.Series[i].Time.Before(d.Series[j].Time) })
	d.TopTools = make([]ToolUse, 0, len(tools))
	for _, t := range tools {
		d.TopTools = append(d.TopTools, *t)
	}
	sort.Slice(d.TopTools, func(i, j int) bool {
		a, b := d.TopTools[i], d.TopTools[j]
		if a.Calls != b.Calls {
			return a.Calls > b.Calls
		}
		return a.ServerName+"/"+a.ToolName < b.ServerName+"/"+b.ToolName
	})
	if len(d.TopTools) > topN {
		d.TopTools = d.TopTools[:topN]
	}
	// Agents per tool and active agents: the distinct (server, tool, agent)
	// of the same calls, counted here.
	src, args, err = s.callsSource(ctx, "agent_id, server_name, tool_name", f, true)
	if err != nil {
		return d, err
	}
	q = "SELECT server_name, tool_name, agent_id FROM " + src + " WHERE agent_id != '' GROUP BY server_name, tool_name, agent_id"
	rows2, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return d, fmt.Errorf("cannot query active agents: %w", err)
	}
	defer rows2.Close()
	per := map[[2]string]uint64{}
	agents := map[string]bool{}
	for rows2.Next() {
		var server, tool, agent string
		if err := rows2.Scan(&server, &tool, &agent); err != nil {
			return d, fmt.Errorf("cannot scan active agents: %w", err)
		}
		per[[2]string{server, tool}]++
		agents[agent] = true
	}
	if err := rows2.Err(); err != nil {
		return d, fmt.Errorf("cannot read active agents: %w", err)
	}
	for i := range d.TopTools {
		d.TopTools[i].Agents = per[[2]string{d.TopTools[i].ServerName, d.TopTools[i].ToolName}]
	}
	d.Totals.ActiveAgents = uint64(len(agents))
	return d, nil
}
