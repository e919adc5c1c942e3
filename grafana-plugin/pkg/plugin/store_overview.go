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

// Overview reads the calls_per_minute rollup once: the uniqExact states are
// merged per (minute, server, tool, outcome), which is where the time goes
// (every event id is in some state), and totals, the time series and the
// per-tool counts are all derived from that one pass. Distinct agents come
// from a second, state-free pass.
func (s *Store) Overview(ctx context.Context, f Filter, topN int) (OverviewData, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	w, args := f.rollupWhere()
	step := f.step()
	q := "SELECT toDateTime(intDiv(toUInt32(minute), ?) * ?) AS t, server_name, tool_name, toString(outcome) AS o, sum(c)" +
		" FROM (SELECT minute, server_name, tool_name, outcome, uniqExactMerge(calls_state) AS c FROM " + s.t("calls_per_minute") +
		" WHERE " + w + " GROUP BY minute, server_name, tool_name, outcome) GROUP BY t, server_name, tool_name, o ORDER BY t"
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
	// Agents per tool and active agents: distinct values only, no state merge.
	q = "SELECT server_name, tool_name, uniqExactIf(agent_id, agent_id != '') FROM " + s.t("calls_per_minute") + " WHERE " + w + " GROUP BY server_name, tool_name"
	rows2, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return d, fmt.Errorf("cannot query active agents: %w", err)
	}
	defer rows2.Close()
	per := map[[2]string]uint64{}
	for rows2.Next() {
		var server, tool string
		var n uint64
		if err := rows2.Scan(&server, &tool, &n); err != nil {
			return d, fmt.Errorf("cannot scan active agents: %w", err)
		}
		per[[2]string{server, tool}] = n
	}
	if err := rows2.Err(); err != nil {
		return d, fmt.Errorf("cannot read active agents: %w", err)
	}
	for i := range d.TopTools {
		d.TopTools[i].Agents = per[[2]string{d.TopTools[i].ServerName, d.TopTools[i].ToolName}]
	}
	if err := s.conn.QueryRow(ctx, "SELECT uniqExactIf(agent_id, agent_id != '') FROM "+s.t("calls_per_minute")+" WHERE "+w, args...).Scan(&d.Totals.ActiveAgents); err != nil {
		return d, fmt.Errorf("cannot query active agents: %w", err)
	}
	return d, nil
}
