package plugin

import (
	"context"
	"fmt"
	"sort"
)

// OverviewData is everything the Overview page shows from the rollup.
type OverviewData struct {
	Totals   Totals
	Series   []Point
	TopTools []ToolUse
}

// Overview reads the calls (callsSource: sealed counts plus merged states
// for unsealed minutes) twice: the time series (CallsOverTime, by minute
// or hour), and per (server, tool, agent), from which totals, per-tool
// counts and distinct agents are derived (whole sealed hours as one row).
func (s *Store) Overview(ctx context.Context, f Filter, topN int) (OverviewData, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	var d OverviewData
	var err error
	if d.Series, err = s.CallsOverTime(ctx, f); err != nil {
		return d, err
	}
	if d.Series == nil {
		d.Series = []Point{}
	}
	src, args, err := s.callsSource(ctx, "agent_id, server_name, tool_name, outcome", f, true)
	if err != nil {
		return d, err
	}
	q := "SELECT server_name, tool_name, agent_id, sum(c), sumIf(c, outcome IN ('error', 'tool_error')), sumIf(c, outcome = 'denied')" +
		" FROM " + src + " GROUP BY server_name, tool_name, agent_id"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return d, fmt.Errorf("cannot query overview: %w", err)
	}
	defer rows.Close()
	tools := map[[2]string]*ToolUse{}
	servers := map[string]bool{}
	agents := map[string]bool{}
	for rows.Next() {
		var server, tool, agent string
		var n, e, dn uint64
		if err := rows.Scan(&server, &tool, &agent, &n, &e, &dn); err != nil {
			return d, fmt.Errorf("cannot scan overview: %w", err)
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
		// An agent_id of "" is an agent too (NoAgentID), as in Agents and ToolUsage.
		agents[agent] = true
		tu.Agents++
		tu.Calls += n
		tu.Errors += e
		tu.Denials += dn
		d.Totals.Calls += n
		d.Totals.Errors += e
		d.Totals.Denials += dn
	}
	if err := rows.Err(); err != nil {
		return d, fmt.Errorf("cannot read overview: %w", err)
	}
	if d.Totals.Calls > 0 {
		d.Totals.ErrorRate = float64(d.Totals.Errors) / float64(d.Totals.Calls)
		d.Totals.DenialRate = float64(d.Totals.Denials) / float64(d.Totals.Calls)
	}
	d.Totals.Servers = uint64(len(servers))
	d.Totals.ActiveAgents = uint64(len(agents))
	for k := range tools {
		if k[1] != "" {
			d.Totals.Tools++
		}
	}
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
	return d, nil
}
